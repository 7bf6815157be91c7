"""hearth.matrix test bed: locally built images and a systemd target server over SSH."""
