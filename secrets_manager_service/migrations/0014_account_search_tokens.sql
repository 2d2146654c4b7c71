-- Account search by segments and infixes of `search_text` (0005; account_secrets.store; the rule
-- in common/search_tokens.py and common migration 0004). Trigrams cannot narrow `acct042`
-- among 100,000 `acct000`..`acct099` accounts: `acc`, `cct`, `ct0` are in every one; the
-- suffixes starting with `acct042` are in the thousand that hold it. A keyword whose parts are
-- all under 3 characters still goes by trigrams.
CREATE INDEX sm_accounts_search_tokens ON sm_accounts
    USING gin (search_segments(search_text), search_infixes(search_text));
-- The planner's estimate of a token lookup comes from the index expressions' statistics.
ANALYZE sm_accounts;
