"""Reading a search space: its YAML within bounds, every hyperparameter it may declare and their scopes, its
initial configurations and training recipe, and the listing of its configurations (none of them sized)."""
