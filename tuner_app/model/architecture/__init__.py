"""Describing and building a configuration's network: block types, the families' specs of blocks, the walk that
sizes a spec (params, MACs, shapes) before anything is built, and the Keras model and HyperModel."""
