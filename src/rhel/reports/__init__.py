"""Reports on RHEL: gradient fidelity against BPTT (``rhel gradcheck``) and cost (``rhel bench``)."""
