-- 003_fax: what the fax poller needs (engine/core/poll.c, docs/fax.md).
--
-- A fax accepted by a gateway is 'submitted' until the gateway gives its final status.
-- The gateway's id for it (its fax id) is kept on the notice, set by the record of the
-- send (queue.c) and by a reconciliation that found the fax; NULL while 'submitted'
-- means the submission's outcome is unknown (the reply was lost): the poller then asks
-- the gateway whether the fax exists before anything is sent again.
ALTER TABLE crier.notice ADD COLUMN transport_id text;

-- The poller reads only this: submitted notices of one channel, oldest due first.
CREATE INDEX notice_poll ON crier.notice (channel, next_attempt_at) WHERE state = 'submitted';
