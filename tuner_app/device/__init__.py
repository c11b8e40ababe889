"""The model as a device runs it: TFLite conversion (float, int8), the int8 features-in network, TFLite Micro."""
