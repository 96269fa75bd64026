"""PostgreSQL's search table: each turn's words in partitions of consecutive ids, searched newest first.

Search ranks the newest ``MAX_CANDIDATES`` turns a query matches. Over one
GIN index of all turns, PostgreSQL finds them by walking the turns backwards
and checking each (right for words said everywhere), or by reading every
match GIN returns and sorting (right for rare ones). Two frequent words said
together in a few thousand of a million turns cost 70-130 ms either way:
150,000 turns checked, or 6,000 rows read from all over a 460 MB table.

``turn_search`` holds what finding and ranking need (no text: 200 bytes a
turn), partitioned by id, a GIN index each. Search asks the newest partition
first, then, in one statement, as many partitions as the matches found there
say hold the rest of the candidates (twice over), each planned on its own
(walk or GIN) and read newest first until they hold them: a search reads
about as many rows as it ranks, in two statements. Words found nowhere among
the newest turns are read at once from all turns. Statement triggers on
``turns`` keep the table (COPY too), making partitions as ids reach them.
"""

from __future__ import annotations

from typing import Any

#: Ids per partition of ``turn_search``: GIN intersects the words' postings
#: of one partition at a time (a tenth of them at a million turns).
PARTITION_IDS = 131072

_COLUMNS = "id, space_id, start_s, live, ts_config, tsv"


def _table() -> str:
    return """
CREATE TABLE IF NOT EXISTS turn_search (
    id BIGINT PRIMARY KEY,
    space_id TEXT NOT NULL,
    start_s DOUBLE PRECISION NOT NULL,
    live INTEGER NOT NULL,
    ts_config regconfig NOT NULL,
    tsv tsvector NOT NULL
) PARTITION BY RANGE (id);
"""


def _partitioning() -> str:
    """``turn_search_partitions(low, high)``: the partitions ids ``low``..``high`` go in, made if missing."""
    return f"""
CREATE OR REPLACE FUNCTION turn_search_partitions(low BIGINT, high BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    part BIGINT := low / {PARTITION_IDS};
BEGIN
    WHILE part <= high / {PARTITION_IDS} LOOP
        IF to_regclass('turn_search_' || part) IS NULL THEN
            -- Two writers reaching a new partition at once: one makes it.
            PERFORM pg_advisory_xact_lock(727275);
            IF to_regclass('turn_search_' || part) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF turn_search FOR VALUES FROM (%s) TO (%s)',
                               'turn_search_' || part, part * {PARTITION_IDS}, (part + 1) * {PARTITION_IDS});
            END IF;
        END IF;
        part := part + 1;
    END LOOP;
END $$;
"""


def _index_and_triggers() -> str:
    return f"""
CREATE INDEX IF NOT EXISTS turn_search_tsv ON turn_search USING GIN (tsv);
CREATE OR REPLACE FUNCTION turn_search_keep() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    low BIGINT;
    high BIGINT;
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        DELETE FROM turn_search WHERE id IN (SELECT id FROM old_turns);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT MIN(id), MAX(id) INTO low, high FROM new_turns;
        IF low IS NOT NULL THEN
            PERFORM turn_search_partitions(low, high);
            INSERT INTO turn_search ({_COLUMNS}) SELECT {_COLUMNS} FROM new_turns;
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER turns_search_insert AFTER INSERT ON turns
    REFERENCING NEW TABLE AS new_turns FOR EACH STATEMENT EXECUTE FUNCTION turn_search_keep();
CREATE OR REPLACE TRIGGER turns_search_update AFTER UPDATE ON turns
    REFERENCING OLD TABLE AS old_turns NEW TABLE AS new_turns FOR EACH STATEMENT EXECUTE FUNCTION turn_search_keep();
CREATE OR REPLACE TRIGGER turns_search_delete AFTER DELETE ON turns
    REFERENCING OLD TABLE AS old_turns FOR EACH STATEMENT EXECUTE FUNCTION turn_search_keep();
"""


def create(cur: Any) -> None:
    """Make the table (after ``turns``), or bring it to a catalog from before it: filled from ``turns``."""
    cur.execute("SELECT to_regclass('turn_search') IS NULL")
    if cur.fetchone()[0]:
        # No writer may add a turn between the copy and the triggers.
        cur.execute("LOCK TABLE turns IN SHARE ROW EXCLUSIVE MODE")
        # Filled first, then indexed: building GIN once is several times
        # faster than inserting a million rows into it.
        cur.execute(_table() + _partitioning())
        cur.execute("SELECT turn_search_partitions(MIN(id), MAX(id)) FROM turns HAVING COUNT(*) > 0")
        cur.execute(f"INSERT INTO turn_search ({_COLUMNS}) SELECT {_COLUMNS} FROM turns ORDER BY id")
    cur.execute(_table() + _partitioning() + _index_and_triggers())


#: A look through several partitions reaches back this many times as far as
#: the matches found so far say the candidates still needed go: the
#: statement stops once it holds them (a partition it never reaches costs
#: its parsing and planning, 0.3-0.6 ms), a look too short costs another
#: statement.
REACH = 2

#: Partitions one look asks at most: each is planned, reached or not.
LOOK_PARTITIONS = 16


def _density_known(seen: int) -> bool:
    """Whether enough of the newest ids were seen for their matches to say how dense the words are.

    Half a partition's: a few dozen newest turns without a word said in
    every other one would have it taken for rare.
    """
    return seen >= PARTITION_IDS // 2


def rare(found: int, seen: int) -> bool:
    """Whether no match among the ``seen`` newest ids says the words are rare: all matches are read at once.

    Not before the density is known (``_density_known``).
    """
    return not found and _density_known(seen)


def at_once(found: int, seen: int, high: int, need: int) -> bool:
    """Whether the ``found`` matches among the ``seen`` newest ids say all ids below ``high`` hold fewer than ``need``.

    They are then asked as one range: one statement to plan, every match
    read and sorted (a branch per partition costs more to plan than the
    few rows it would spare).
    """
    return _density_known(seen) and found * high < need * seen


def look_low(found: int, seen: int, high: int, need: int) -> int:
    """The first id of the next look, whose ids end at ``high`` (exclusive), for ``need`` more matches.

    One partition while too few ids were seen to tell how dense the
    matches are; else as many as ``found`` among ``seen`` say hold
    ``need``, ``REACH`` times over, in whole partitions.
    """
    one = partition_low(high)
    if not found or not _density_known(seen):
        return one
    reach = max(0, high - need * seen * REACH // found) // PARTITION_IDS * PARTITION_IDS
    return max(min(one, reach), one - (LOOK_PARTITIONS - 1) * PARTITION_IDS)


def look(found: int, seen: int, high: int, need: int) -> list[tuple[int, int]]:
    """The id ranges (first, end) of the next look, newest first: one, or a partition each."""
    if at_once(found, seen, high, need):
        return [(0, high)]
    tops = range(partition_low(high), look_low(found, seen, high, need) - 1, -PARTITION_IDS)
    return [(part, min(high, part + PARTITION_IDS)) for part in tops]


def partition_low(high: int) -> int:
    """The first id of the partition below ``high`` (exclusive)."""
    return (high - 1) // PARTITION_IDS * PARTITION_IDS
