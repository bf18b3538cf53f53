"""PostgreSQL schema of the durable store, as versioned migrations (append only).

Times are epoch milliseconds (UTC) taken from the database clock (`durable_now_ms()`), so
leases compare against one clock whatever host a worker runs on. JSON is stored as text,
byte for byte what the library encoded. Functions keep the hot paths at one round trip and
one transaction each: a claim (with the completed steps), a fenced step write and a stream
append.
"""

from __future__ import annotations

from ._migrations import Migration

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, steps, events, stream log",
        r"""
CREATE FUNCTION durable_now_ms() RETURNS bigint LANGUAGE sql VOLATILE
AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

CREATE TABLE durable_runs (
    run_id text PRIMARY KEY,
    manifest_hash text NOT NULL,
    manifest text NOT NULL,
    project_id text NOT NULL,
    scenario_id text,
    status text NOT NULL,
    created_at_ms bigint NOT NULL,
    updated_at_ms bigint NOT NULL,
    lease_holder text,
    lease_expires_at_ms bigint,
    lease_epoch bigint NOT NULL DEFAULT 0,
    outcome text,
    step_count integer NOT NULL DEFAULT 0,
    handle text
);
-- listing order is creation order; updated_at_ms stays unindexed so step commits are HOT updates
CREATE INDEX durable_runs_created ON durable_runs (created_at_ms DESC, run_id DESC);
CREATE INDEX durable_runs_status ON durable_runs (status, lease_expires_at_ms);

CREATE TABLE durable_steps (
    run_id text NOT NULL,
    step_index integer NOT NULL,
    intent text NOT NULL,
    kind text NOT NULL,
    input_hash text,
    status text NOT NULL,
    attempts integer NOT NULL,
    result text,
    error text,
    started_at_ms bigint,
    completed_at_ms bigint,
    PRIMARY KEY (run_id, step_index)
);

CREATE TABLE durable_events (
    run_id text NOT NULL,
    key text NOT NULL,
    payload text NOT NULL,
    created_at_ms bigint NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE durable_stream (
    run_id text NOT NULL,
    seq bigint NOT NULL,
    event_id text NOT NULL,
    payload text NOT NULL,
    created_at_ms bigint NOT NULL,
    PRIMARY KEY (run_id, seq),
    UNIQUE (run_id, event_id)
);

CREATE TABLE durable_stream_heads (
    run_id text PRIMARY KEY,
    next_seq bigint NOT NULL
);

CREATE FUNCTION durable_write_step(
    p_run_id text, p_index integer, p_status text, p_worker text, p_epoch bigint,
    p_intent text, p_kind text, p_input_hash text, p_result text, p_error text
) RETURNS TABLE (
    o_code text, o_holder text, o_intent text, o_kind text, o_input_hash text,
    o_status text, o_attempts integer, o_result text, o_error text,
    o_started_at_ms bigint, o_completed_at_ms bigint
) LANGUAGE plpgsql AS $fn$
DECLARE
    v_now bigint := durable_now_ms();
    v_holder text;
    v_epoch bigint;
    v_prev durable_steps%ROWTYPE;
    v_intent text := p_intent;
    v_kind text := p_kind;
BEGIN
    -- the fence: lock the run row and check the lease holder (and, when given, the lease
    -- epoch: the fencing token of the claim) in this transaction
    SELECT r.lease_holder, r.lease_epoch INTO v_holder, v_epoch
        FROM durable_runs r WHERE r.run_id = p_run_id FOR UPDATE;
    IF NOT FOUND THEN
        o_code := 'missing'; RETURN NEXT; RETURN;
    END IF;
    IF p_worker IS NOT NULL AND (v_holder IS DISTINCT FROM p_worker
            OR (p_epoch IS NOT NULL AND v_epoch <> p_epoch)) THEN
        o_code := 'lost'; o_holder := v_holder; RETURN NEXT; RETURN;
    END IF;
    SELECT * INTO v_prev FROM durable_steps s
        WHERE s.run_id = p_run_id AND s.step_index = p_index;
    IF FOUND AND v_prev.status = 'completed' THEN
        o_code := 'completed'; o_intent := v_prev.intent; o_kind := v_prev.kind;
        o_input_hash := v_prev.input_hash; o_status := v_prev.status;
        o_attempts := v_prev.attempts; o_result := v_prev.result; o_error := v_prev.error;
        o_started_at_ms := v_prev.started_at_ms; o_completed_at_ms := v_prev.completed_at_ms;
        RETURN NEXT; RETURN;
    END IF;
    IF v_intent IS NULL THEN
        IF NOT FOUND THEN
            o_code := 'not_begun'; RETURN NEXT; RETURN;
        END IF;
        v_intent := v_prev.intent; v_kind := v_prev.kind;
    END IF;
    UPDATE durable_runs r SET step_count = GREATEST(r.step_count, p_index + 1), updated_at_ms = v_now
        WHERE r.run_id = p_run_id;
    INSERT INTO durable_steps AS s (run_id, step_index, intent, kind, input_hash, status,
        attempts, result, error, started_at_ms, completed_at_ms)
    VALUES (p_run_id, p_index, v_intent, v_kind, p_input_hash, p_status, 1, p_result, p_error,
        v_now, CASE WHEN p_status = 'running' THEN NULL ELSE v_now END)
    ON CONFLICT (run_id, step_index) DO UPDATE SET
        intent = excluded.intent,
        kind = excluded.kind,
        input_hash = COALESCE(excluded.input_hash, s.input_hash),
        status = excluded.status,
        result = excluded.result,
        error = excluded.error,
        attempts = CASE WHEN s.status = 'running' AND excluded.status <> 'running'
                        THEN s.attempts ELSE s.attempts + 1 END,
        started_at_ms = CASE WHEN s.status = 'running' THEN s.started_at_ms
                             ELSE excluded.started_at_ms END,
        completed_at_ms = excluded.completed_at_ms
    WHERE s.status <> 'completed'
    RETURNING s.intent, s.kind, s.input_hash, s.status, s.attempts, s.result, s.error,
        s.started_at_ms, s.completed_at_ms
    INTO o_intent, o_kind, o_input_hash, o_status, o_attempts, o_result, o_error,
        o_started_at_ms, o_completed_at_ms;
    o_code := 'ok';
    RETURN NEXT;
END
$fn$;

CREATE FUNCTION durable_stream_append(p_run_id text, p_ids text[], p_payloads text[])
RETURNS TABLE (o_accepted boolean, o_seq bigint, o_payload text, o_created_at_ms bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now bigint := durable_now_ms();
    v_next bigint;
    i integer;
BEGIN
    -- the per-run head row, locked until commit, serializes appenders of one run: seq stays
    -- gapless and in commit order
    INSERT INTO durable_stream_heads AS h (run_id, next_seq) VALUES (p_run_id, 0)
        ON CONFLICT (run_id) DO UPDATE SET next_seq = h.next_seq
        RETURNING h.next_seq INTO v_next;
    FOR i IN 1 .. COALESCE(array_length(p_ids, 1), 0) LOOP
        INSERT INTO durable_stream (run_id, seq, event_id, payload, created_at_ms)
            VALUES (p_run_id, v_next, p_ids[i], p_payloads[i], v_now)
            ON CONFLICT (run_id, event_id) DO NOTHING;
        IF FOUND THEN
            o_accepted := true; o_seq := v_next; o_payload := NULL; o_created_at_ms := v_now;
            v_next := v_next + 1;
        ELSE
            SELECT false, s.seq, s.payload, s.created_at_ms
                INTO o_accepted, o_seq, o_payload, o_created_at_ms
                FROM durable_stream s WHERE s.run_id = p_run_id AND s.event_id = p_ids[i];
        END IF;
        RETURN NEXT;
    END LOOP;
    UPDATE durable_stream_heads h SET next_seq = v_next WHERE h.run_id = p_run_id;
END
$fn$;
""",
    ),
    Migration(
        2,
        "a step write under another intent than the recorded one is refused (divergence)",
        r"""
CREATE OR REPLACE FUNCTION durable_write_step(
    p_run_id text, p_index integer, p_status text, p_worker text, p_epoch bigint,
    p_intent text, p_kind text, p_input_hash text, p_result text, p_error text
) RETURNS TABLE (
    o_code text, o_holder text, o_intent text, o_kind text, o_input_hash text,
    o_status text, o_attempts integer, o_result text, o_error text,
    o_started_at_ms bigint, o_completed_at_ms bigint
) LANGUAGE plpgsql AS $fn$
DECLARE
    v_now bigint := durable_now_ms();
    v_holder text;
    v_epoch bigint;
    v_prev durable_steps%ROWTYPE;
    v_intent text := p_intent;
    v_kind text := p_kind;
BEGIN
    -- the fence: lock the run row and check the lease holder (and, when given, the lease
    -- epoch: the fencing token of the claim) in this transaction
    SELECT r.lease_holder, r.lease_epoch INTO v_holder, v_epoch
        FROM durable_runs r WHERE r.run_id = p_run_id FOR UPDATE;
    IF NOT FOUND THEN
        o_code := 'missing'; RETURN NEXT; RETURN;
    END IF;
    IF p_worker IS NOT NULL AND (v_holder IS DISTINCT FROM p_worker
            OR (p_epoch IS NOT NULL AND v_epoch <> p_epoch)) THEN
        o_code := 'lost'; o_holder := v_holder; RETURN NEXT; RETURN;
    END IF;
    SELECT * INTO v_prev FROM durable_steps s
        WHERE s.run_id = p_run_id AND s.step_index = p_index;
    -- a recorded position keeps its intent, whatever its status (divergence)
    IF FOUND AND p_intent IS NOT NULL AND v_prev.intent <> p_intent THEN
        o_code := 'diverged'; o_intent := v_prev.intent; RETURN NEXT; RETURN;
    END IF;
    IF FOUND AND v_prev.status = 'completed' THEN
        o_code := 'completed'; o_intent := v_prev.intent; o_kind := v_prev.kind;
        o_input_hash := v_prev.input_hash; o_status := v_prev.status;
        o_attempts := v_prev.attempts; o_result := v_prev.result; o_error := v_prev.error;
        o_started_at_ms := v_prev.started_at_ms; o_completed_at_ms := v_prev.completed_at_ms;
        RETURN NEXT; RETURN;
    END IF;
    IF v_intent IS NULL THEN
        IF NOT FOUND THEN
            o_code := 'not_begun'; RETURN NEXT; RETURN;
        END IF;
        v_intent := v_prev.intent; v_kind := v_prev.kind;
    END IF;
    UPDATE durable_runs r SET step_count = GREATEST(r.step_count, p_index + 1), updated_at_ms = v_now
        WHERE r.run_id = p_run_id;
    INSERT INTO durable_steps AS s (run_id, step_index, intent, kind, input_hash, status,
        attempts, result, error, started_at_ms, completed_at_ms)
    VALUES (p_run_id, p_index, v_intent, v_kind, p_input_hash, p_status, 1, p_result, p_error,
        v_now, CASE WHEN p_status = 'running' THEN NULL ELSE v_now END)
    ON CONFLICT (run_id, step_index) DO UPDATE SET
        intent = excluded.intent,
        kind = excluded.kind,
        input_hash = COALESCE(excluded.input_hash, s.input_hash),
        status = excluded.status,
        result = excluded.result,
        error = excluded.error,
        attempts = CASE WHEN s.status = 'running' AND excluded.status <> 'running'
                        THEN s.attempts ELSE s.attempts + 1 END,
        started_at_ms = CASE WHEN s.status = 'running' THEN s.started_at_ms
                             ELSE excluded.started_at_ms END,
        completed_at_ms = excluded.completed_at_ms
    WHERE s.status <> 'completed'
    RETURNING s.intent, s.kind, s.input_hash, s.status, s.attempts, s.result, s.error,
        s.started_at_ms, s.completed_at_ms
    INTO o_intent, o_kind, o_input_hash, o_status, o_attempts, o_result, o_error,
        o_started_at_ms, o_completed_at_ms;
    o_code := 'ok';
    RETURN NEXT;
END
$fn$;
""",
    ),
    Migration(
        3,
        "a run claimed (or created) with its completed steps in one call; batched stream "
        "appends as set operations; a completed step is final",
        r"""
CREATE FUNCTION durable_claim_run(
    p_run_id text, p_hash text, p_manifest text, p_project text, p_scenario text,
    p_worker text, p_lease_ms bigint
) RETURNS TABLE (
    o_code text, o_manifest text, o_status text, o_created_at_ms bigint,
    o_updated_at_ms bigint, o_holder text, o_expires_at_ms bigint, o_epoch bigint,
    o_outcome text, o_step_count integer, o_handle text,
    o_index integer, o_intent text, o_kind text, o_input_hash text, o_attempts integer,
    o_result text, o_started_at_ms bigint, o_completed_at_ms bigint
) LANGUAGE plpgsql AS $fn$
DECLARE
    v_now bigint := durable_now_ms();
    r durable_runs%ROWTYPE;
BEGIN
    -- a new run is inserted already claimed (epoch 1): one row back, no step to read
    INSERT INTO durable_runs (run_id, manifest_hash, manifest, project_id, scenario_id, status,
        created_at_ms, updated_at_ms, lease_holder, lease_expires_at_ms, lease_epoch)
    VALUES (p_run_id, p_hash, p_manifest, p_project, p_scenario, 'running', v_now, v_now,
        p_worker, v_now + p_lease_ms, 1)
    ON CONFLICT (run_id) DO NOTHING;
    IF FOUND THEN
        o_code := 'new'; o_status := 'running'; o_created_at_ms := v_now;
        o_updated_at_ms := v_now; o_holder := p_worker; o_expires_at_ms := v_now + p_lease_ms;
        o_epoch := 1; o_step_count := 0;
        RETURN NEXT;
        RETURN;
    END IF;
    -- an existing run is locked first: a step write of the former holder (which locks the
    -- run row too) lands before the claim or is fenced after it, and the read of the
    -- completed steps below (a statement of its own) sees every step that landed
    SELECT * INTO r FROM durable_runs d WHERE d.run_id = p_run_id FOR UPDATE;
    IF NOT FOUND THEN
        o_code := 'missing'; RETURN NEXT; RETURN;
    END IF;
    IF r.manifest_hash <> p_hash THEN
        o_code := 'mismatch'; RETURN NEXT; RETURN;
    END IF;
    IF r.status = 'completed' THEN
        o_code := 'completed';
    ELSIF r.lease_holder IS NOT NULL AND r.lease_holder <> p_worker
            AND r.lease_expires_at_ms > v_now THEN
        o_code := 'held'; o_holder := r.lease_holder; o_expires_at_ms := r.lease_expires_at_ms;
        RETURN NEXT;
        RETURN;
    ELSE
        UPDATE durable_runs d SET lease_holder = p_worker,
            lease_expires_at_ms = v_now + p_lease_ms, lease_epoch = d.lease_epoch + 1,
            status = 'running', updated_at_ms = v_now
            WHERE d.run_id = p_run_id RETURNING d.* INTO r;
        o_code := 'claimed';
    END IF;
    o_manifest := r.manifest; o_status := r.status; o_created_at_ms := r.created_at_ms;
    o_updated_at_ms := r.updated_at_ms; o_holder := r.lease_holder;
    o_expires_at_ms := r.lease_expires_at_ms; o_epoch := r.lease_epoch;
    o_outcome := r.outcome; o_step_count := r.step_count; o_handle := r.handle;
    RETURN NEXT;
    -- every step write raises step_count under the run lock: 0 means there is no step
    IF r.step_count > 0 THEN
        RETURN QUERY SELECT 'step'::text, NULL::text, NULL::text, NULL::bigint, NULL::bigint,
            NULL::text, NULL::bigint, NULL::bigint, NULL::text, NULL::integer, NULL::text,
            s.step_index, s.intent, s.kind, s.input_hash, s.attempts, s.result,
            s.started_at_ms, s.completed_at_ms
        FROM durable_steps s WHERE s.run_id = p_run_id AND s.status = 'completed'
        ORDER BY s.step_index;
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION durable_stream_append(p_run_id text, p_ids text[], p_payloads text[])
RETURNS TABLE (o_accepted boolean, o_seq bigint, o_payload text, o_created_at_ms bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now bigint := durable_now_ms();
    v_next bigint;
    v_added bigint;
BEGIN
    -- the per-run head row, locked until commit, serializes appenders of one run: seq stays
    -- gapless and in commit order, and each statement below sees every earlier append
    INSERT INTO durable_stream_heads AS h (run_id, next_seq) VALUES (p_run_id, 0)
        ON CONFLICT (run_id) DO UPDATE SET next_seq = h.next_seq
        RETURNING h.next_seq INTO v_next;
    -- the first occurrence of each id not logged yet takes the next seq, in batch order
    INSERT INTO durable_stream (run_id, seq, event_id, payload, created_at_ms)
    SELECT p_run_id, v_next + row_number() OVER (ORDER BY f.ord) - 1, f.id, f.payload, v_now
    FROM (
        SELECT DISTINCT ON (u.id) u.id, u.payload, u.ord
        FROM unnest(p_ids, p_payloads) WITH ORDINALITY AS u(id, payload, ord)
        WHERE NOT EXISTS (
            SELECT 1 FROM durable_stream s WHERE s.run_id = p_run_id AND s.event_id = u.id
        )
        ORDER BY u.id, u.ord
    ) f;
    GET DIAGNOSTICS v_added = ROW_COUNT;
    IF v_added > 0 THEN
        UPDATE durable_stream_heads h SET next_seq = v_next + v_added WHERE h.run_id = p_run_id;
    END IF;
    -- one row per input, in order; the payload only where it is not the caller's own
    RETURN QUERY
    SELECT x.accepted, x.seq, CASE WHEN x.accepted THEN NULL ELSE x.payload END, x.created
    FROM (
        SELECT s.seq >= v_next AND u.ord = min(u.ord) OVER (PARTITION BY u.id) AS accepted,
            s.seq, s.payload, s.created_at_ms AS created, u.ord
        FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)
        JOIN durable_stream s ON s.run_id = p_run_id AND s.event_id = u.id
    ) x
    ORDER BY x.ord;
END
$fn$;

-- a completed step is final: refused by the database too, whoever writes
CREATE FUNCTION durable_steps_completed_final() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'step_completed: a completed step is final'
        USING ERRCODE = 'integrity_constraint_violation';
END
$fn$;
CREATE TRIGGER durable_steps_completed_final BEFORE UPDATE ON durable_steps
    FOR EACH ROW WHEN (OLD.status = 'completed') EXECUTE FUNCTION durable_steps_completed_final();
""",
    ),
    Migration(
        4,
        "batched stream appends probe the event-id index per event, whatever the log's length",
        r"""
CREATE OR REPLACE FUNCTION durable_stream_append(p_run_id text, p_ids text[], p_payloads text[])
RETURNS TABLE (o_accepted boolean, o_seq bigint, o_payload text, o_created_at_ms bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now bigint := durable_now_ms();
    v_next bigint;
    v_added bigint;
BEGIN
    -- the per-run head row, locked until commit, serializes appenders of one run: seq stays
    -- gapless and in commit order, and each statement below sees every earlier append
    INSERT INTO durable_stream_heads AS h (run_id, next_seq) VALUES (p_run_id, 0)
        ON CONFLICT (run_id) DO UPDATE SET next_seq = h.next_seq
        RETURNING h.next_seq INTO v_next;
    -- the first occurrence of each id not logged yet takes the next seq, in batch order; a
    -- LATERAL ... LIMIT 1 is one index probe an id (a join could read the run's whole log)
    INSERT INTO durable_stream (run_id, seq, event_id, payload, created_at_ms)
    SELECT p_run_id, v_next + row_number() OVER (ORDER BY f.ord) - 1, f.id, f.payload, v_now
    FROM (
        SELECT DISTINCT ON (u.id) u.id, u.payload, u.ord
        FROM unnest(p_ids, p_payloads) WITH ORDINALITY AS u(id, payload, ord)
        LEFT JOIN LATERAL (
            SELECT true AS hit FROM durable_stream s
            WHERE s.run_id = p_run_id AND s.event_id = u.id LIMIT 1
        ) logged ON true
        WHERE logged.hit IS NULL
        ORDER BY u.id, u.ord
    ) f;
    GET DIAGNOSTICS v_added = ROW_COUNT;
    IF v_added > 0 THEN
        UPDATE durable_stream_heads h SET next_seq = v_next + v_added WHERE h.run_id = p_run_id;
    END IF;
    IF v_added = cardinality(p_ids) THEN
        -- every id was new and distinct: seq follows the batch order, nothing to look up
        RETURN QUERY
        SELECT true, v_next + u.ord - 1, NULL::text, v_now
        FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord;
        RETURN;
    END IF;
    -- one row per input, in order; the payload only where it is not the caller's own
    RETURN QUERY
    SELECT x.accepted, x.seq, CASE WHEN x.accepted THEN NULL ELSE x.payload END, x.created
    FROM (
        SELECT e.seq >= v_next AND u.ord = min(u.ord) OVER (PARTITION BY u.id) AS accepted,
            e.seq, e.payload, e.created_at_ms AS created, u.ord
        FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)
        CROSS JOIN LATERAL (
            SELECT s.seq, s.payload, s.created_at_ms FROM durable_stream s
            WHERE s.run_id = p_run_id AND s.event_id = u.id LIMIT 1
        ) e
    ) x
    ORDER BY x.ord;
END
$fn$;
""",
    ),
    Migration(
        5,
        "a batched stream append of new distinct ids is one set insert and one summary row; "
        "any conflict falls back to the exact append (renamed durable_stream_append_exact)",
        r"""
ALTER FUNCTION durable_stream_append(text, text[], text[])
    RENAME TO durable_stream_append_exact;

CREATE FUNCTION durable_stream_append(p_run_id text, p_ids text[], p_payloads text[])
RETURNS TABLE (o_accepted boolean, o_seq bigint, o_payload text, o_created_at_ms bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now bigint := durable_now_ms();
    v_n bigint := COALESCE(cardinality(p_ids), 0);
    v_next bigint;
BEGIN
    IF v_n > 0 THEN
        BEGIN
            -- the head row, locked until commit, serializes appenders of one run (seq stays
            -- gapless and in commit order); it is moved past the whole batch at once
            INSERT INTO durable_stream_heads AS h (run_id, next_seq) VALUES (p_run_id, v_n)
                ON CONFLICT (run_id) DO UPDATE SET next_seq = h.next_seq + v_n
                RETURNING h.next_seq - v_n INTO v_next;
            -- every id new and distinct: seq follows the batch order
            INSERT INTO durable_stream (run_id, seq, event_id, payload, created_at_ms)
            SELECT p_run_id, v_next + u.ord - 1, u.id, u.payload, v_now
            FROM unnest(p_ids, p_payloads) WITH ORDINALITY AS u(id, payload, ord);
            -- one row for the batch: accepted, from seq v_next on (for one event, its row)
            o_accepted := true; o_seq := v_next; o_payload := NULL; o_created_at_ms := v_now;
            RETURN NEXT;
            RETURN;
        EXCEPTION WHEN unique_violation THEN
            -- an id logged already or repeated in the batch: undone, and the exact path
            -- (one row per input, the original record for a duplicate) takes the batch
            NULL;
        END;
    END IF;
    RETURN QUERY SELECT * FROM durable_stream_append_exact(p_run_id, p_ids, p_payloads);
END
$fn$;
""",
    ),
)
