"""Look inside a model: its layers ' activations, figures of its filters, maps and saliency, and RSA."""
