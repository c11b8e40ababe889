"""Model: YAML search spaces, architecture arithmetic (shapes, params, MACs), the Keras build and HyperModel, enumeration and budget checks."""
