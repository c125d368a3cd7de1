"""Non-causal multi-head attention (the vision tower's): PyTorch reference and a fused CPU kernel."""
