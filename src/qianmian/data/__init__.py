"""The data layer: the data dictionary, import with validation, identity resolution, PII masking."""
