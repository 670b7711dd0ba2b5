-- 008_operations: no silent rerouting (issue 17).
--
-- A notice whose channel no live worker serves waits for one; it never moves on by itself
-- (`crier campaign reroute` moves it, logged). So that `crier status` can say since when a
-- channel has had no worker, every `crier run` stamps here, with its heartbeat, each
-- channel it serves. crier.worker rows go when a worker stops; these stay.
CREATE TABLE crier.channel_service (
    channel        text PRIMARY KEY,
    last_served_at timestamptz NOT NULL  -- the last heartbeat of a worker serving it
);
GRANT SELECT, INSERT, UPDATE ON crier.channel_service TO crier_operator;
GRANT SELECT ON crier.channel_service TO crier_legal, crier_auditor;

COMMENT ON TABLE crier.worker IS
    'The running crier run processes and the channels each serves. A notice waits on its'
    ' channel until a live worker serves it; nothing moves it on but crier campaign reroute.';
