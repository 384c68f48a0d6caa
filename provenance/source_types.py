"""IPTC digital source types (https://cv.iptc.org/newscodes/digitalsourcetype/), as C2PA actions
and XMP metadata declare them.

Only two declare generative AI: ``trainedAlgorithmicMedia`` (made by a model trained on sampled
data) and ``compositeWithTrainedAlgorithmicMedia`` (a composite with such elements).
``algorithmicMedia`` is media made by an algorithm *without* sampled training data (a gradient,
a fractal, a rendered chart), and ``compositeSynthetic`` a composite with synthetic elements of
either kind: declared as software-made, they are context, never evidence of generative AI.
"""

from __future__ import annotations

#: Declare generative-AI involvement.
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"})

#: Declare software-made content that is not (or not said to be) generative AI.
ALGORITHMIC_SOURCE_TYPES = frozenset({"algorithmicMedia", "compositeSynthetic"})
