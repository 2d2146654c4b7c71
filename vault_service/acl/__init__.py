"""ACL policies in HashiCorp\x27s language, bound to token roles through external groups."""
