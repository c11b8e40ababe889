"""Model: `space` reads a YAML search space; `architecture` sizes and builds the network of each configuration."""
