"""Speed and detection-quality benchmarks of the Snowstorm detector against the seed's method and common peers."""
