-- Keyword search by the name's segments (store.search; the rule in common/search_tokens.py and
-- common migration 0004). Trigrams (0004) cannot narrow `team-0003` among a million
-- `team-NNNN/...` names: every trigram of it is in nearly every name. Its segment part `0003`
-- is in a few thousand, and the trigram LIKE only rechecks those. A keyword without such a part
-- (no separator, or parts under 3 characters) still goes by trigrams. About as big as the
-- trigram index; a million names take some 10 s to index.
CREATE INDEX vault_secrets_name_segments ON vault_secrets USING gin (search_segments(lower(name)));
-- The planner's estimate of a segment lookup comes from the index expression's statistics.
ANALYZE vault_secrets;
