"""The workflow engine: just-in-time role requests, stepwise approvals and the grants they give."""
