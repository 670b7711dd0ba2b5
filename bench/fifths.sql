-- fifths.sql - the rate of each fifth of a campaign, from the dispatch log's own times:
-- the time the (n/5 * k)-th notice reached :final, from :t0 (the run's start, epoch).
-- Prints the five rates and the overall rate (notices/s), space-separated; n/a for a
-- fifth not reached. psql -v id=1 -v n=1000000 -v final=delivered -v t0=EPOCH
WITH d AS (SELECT extract(epoch FROM at) AS t, row_number() OVER (ORDER BY id) AS k
           FROM crier.dispatch_log WHERE campaign_id = :id AND event = 'transition'
           AND from_state = 'sending' AND to_state = :'final'),
e AS (SELECT f, (SELECT t FROM d WHERE k = :n * f / 5) AS t FROM generate_series(0, 5) f)
SELECT string_agg(coalesce(to_char((:n / 5.0) / (e.t - coalesce(p.t, :t0)), 'FM9999999990'),
                           'n/a'), ' ' ORDER BY e.f),
       coalesce(to_char(:n / (max(e.t) - :t0), 'FM9999999990'), 'n/a')
FROM e LEFT JOIN e p ON p.f = e.f - 1 WHERE e.f > 0;
