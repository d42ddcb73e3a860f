"""Builders for DICOM test instances: small, large, huge (streamed), encapsulated, studies."""
