-- ceiling.sql - the engine's ceiling: the campaign named 'ceiling' taken through the same
-- two transitions crier makes (ready -> sending -> :final) and their dispatch-log rows,
-- by PostgreSQL alone, set-based, in one transaction: no round trips, no batches.
-- psql -v channel=null -v final=delivered -f bench/ceiling.sql (engine.sh, scale.sh)
BEGIN;
WITH c AS (SELECT id FROM crier.campaign WHERE name = 'ceiling'),
u AS (UPDATE crier.notice n SET state = 'sending', lease_owner = 'ceiling',
        lease_expires_at = now() + interval '5 min', attempt = attempt + 1,
        channel_attempt = channel_attempt + 1, channel_started_at = now(), updated_at = now()
      FROM c WHERE n.campaign_id = c.id AND n.state = 'ready'
      RETURNING n.id, n.campaign_id, n.recipient_seq, n.attempt)
INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,
  from_state, to_state, attempt, actor)
SELECT u.campaign_id, 'transition', u.id, r.ref, :'channel', 'ready', 'sending', u.attempt,
  'ceiling'
FROM u JOIN crier.recipient r ON r.campaign_id = u.campaign_id AND r.seq = u.recipient_seq;
WITH c AS (SELECT id FROM crier.campaign WHERE name = 'ceiling'),
u AS (UPDATE crier.notice n SET state = :'final', lease_owner = NULL,
        lease_expires_at = NULL, updated_at = now()
      FROM c WHERE n.campaign_id = c.id AND n.state = 'sending'
      RETURNING n.id, n.campaign_id, n.recipient_seq, n.attempt)
INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref, channel,
  from_state, to_state, attempt, actor, detail)
SELECT u.campaign_id, 'transition', u.id, r.ref, :'channel', 'sending', :'final', u.attempt,
  'ceiling', 'accepted'
FROM u JOIN crier.recipient r ON r.campaign_id = u.campaign_id AND r.seq = u.recipient_seq;
COMMIT;
