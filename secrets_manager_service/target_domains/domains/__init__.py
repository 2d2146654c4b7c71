"""Target domains themselves: a directory's endpoints, settings and bind passwords; the blueprint's owner."""
