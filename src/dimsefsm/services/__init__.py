"""DIMSE services: one module per service, each with its SCP and SCU charts."""
