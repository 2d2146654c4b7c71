"""Target domains: directories scanned for accounts, whose users become managed accounts."""
