-- Keyword search by segments: the SQL half of the rule in common/search_tokens.py, which says
-- why and makes the queries. A lower-cased text is cut into segments at the separators
-- `/ .-_@+=:\` (search_tokens.SEPARATORS; a test holds the two to the same set);
-- `search_segments` is the set of its segments, `search_infixes` the set of every segment's
-- suffixes of 3 characters or more, so that a substring of a segment starts one of them. A
-- lexeme is at most 2047 bytes: segments are kept by their first 500 characters (a text shorter
-- than 2048 bytes has none longer, and is cut by built-in functions alone, the fast way) and
-- suffixes by their first 32. Both are IMMUTABLE, for expression indexes (Vault 0009, Secrets
-- Manager 0014), and call no function of ours, so that pg_restore, which builds indexes with an
-- empty search_path, finds every function they use.
CREATE FUNCTION search_segments(lowered text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_to_tsvector(CASE WHEN octet_length(lowered) < 2048 THEN array_remove(separated, '')
                                  ELSE ARRAY(SELECT left(segment, 500) FROM unnest(separated) AS segment
                                              WHERE segment <> '') END)
      FROM string_to_array(translate(lowered, E'/ .-_@+=:\\', '//////////'), '/') AS separated
$$;

CREATE FUNCTION search_infixes(lowered text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_to_tsvector(ARRAY(
        SELECT substr(segment, start, 32)
          FROM unnest(string_to_array(translate(lowered, E'/ .-_@+=:\\', '//////////'), '/')) AS segment,
               generate_series(1, length(segment) - 2) AS start))
$$;
