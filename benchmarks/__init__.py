"""Side-by-side benchmarks of codeinterp against raw jupyter-client and peer tools (``make bench``)."""
