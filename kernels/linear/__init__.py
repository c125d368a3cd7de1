"""Linear layers for decoding on CPU: a few activation rows times a bf16 weight (cpu_gemv.c)."""
