"""The application layer: what the service does, as plain functions the API, the pages, the CLI,
batch runs and workers call. Blueprints parse requests and render answers; the work is here, once.
"""
