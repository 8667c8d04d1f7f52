"""Public values from the approved template (sql/template.py ``output_literals``) and the
predictive column's failure category in the clean room."""

from __future__ import annotations

import duckdb

from synthroom.demo.adtech import DEMO_CLASSIFICATION, DEMO_TEMPLATE
from synthroom.errors import FAILURE_CATEGORIES
from synthroom.sql.template import output_literals


def test_output_literals_reads_the_values_a_column_can_only_take():
    sql = (
        "SELECT CASE WHEN a.x > 1 THEN 'yes' ELSE 'no' END AS y, a.z AS z, 'k' AS k, "
        "CASE WHEN a.x > 2 THEN 1 WHEN a.x > 3 THEN 2 END AS n, COALESCE(NULL, 'p') AS c, "
        "IF(a.x > 1, TRUE, FALSE) AS b, CASE WHEN a.x > 1 THEN 1.5 ELSE 2 END AS d, "
        "CASE WHEN a.x > 1 THEN 'a' ELSE 1 END AS mixed, upper('a') AS f, "
        "CASE WHEN a.x > 1 THEN (CASE WHEN a.z > 1 THEN 'hi' ELSE 'mid' END) ELSE 'lo' END AS nest, "
        "CASE WHEN a.x > 1 THEN a.z ELSE 'q' END AS col FROM t AS a"
    )
    assert output_literals(sql) == {
        "y": ("yes", "no"),
        "k": ("k",),
        "n": ("1", "2"),
        "c": ("p",),
        "b": ("true", "false"),
        "nest": ("hi", "mid", "lo"),
    }


def test_the_literals_are_the_text_duckdb_counts():
    # The counting interface reads a categorical value as CAST(value AS VARCHAR): the declared
    # literals must be exactly those texts, or real values would fold into 'other'.
    sql = (
        "SELECT CASE WHEN x > 1 THEN 'yes' ELSE 'no' END AS y, CASE WHEN x > 2 THEN 10 ELSE 0 END AS n, CASE WHEN x > 2 THEN 1 ELSE -1 END AS neg, "
        "IF(x > 1, TRUE, FALSE) AS b, COALESCE(CASE WHEN x > 2 THEN 'it''s' END, 'none') AS q "
        "FROM (SELECT unnest(range(5)) AS x) AS t"
    )
    literals = output_literals(sql)
    con = duckdb.connect()
    for column, values in literals.items():
        seen = {r[0] for r in con.execute(f"SELECT DISTINCT CAST({column} AS VARCHAR) FROM ({sql})").fetchall()}
        assert seen <= set(values), column
    assert literals["q"] == ("it's", "none") and literals["n"] == ("10", "0")
    assert set(literals) == {"y", "n", "b", "q"}  # a negative number is an expression: not read


def test_a_room_job_declares_the_template_literals_of_an_undeclared_target(tmp_path):
    """The demo template's target is CASE WHEN ... THEN 'yes' ELSE 'no' END: with the
    classification declaring nothing, the job's synthesizer still gets both classes as public
    categories (no selection budget, no class lost)."""
    from roomkit import two_party
    from synthroom.room.jobs import run_job, start_job

    tp = two_party(tmp_path, users=200, budget=5)
    undeclared = {
        **DEMO_CLASSIFICATION,
        "columns": [{k: v for k, v in c.items() if k != "categories"} for c in DEMO_CLASSIFICATION["columns"]],
    }
    template = tp.room.create_template(
        tp.advertiser, tp.collab, "converters", DEMO_TEMPLATE, epsilon=1.0, classification=undeclared, max_mia_score=0.8
    )
    for actor in (tp.publisher, tp.advertiser):
        template = tp.room.approve_template(actor, template["id"], template["hash"])
    seen = {}

    def records(frame, schema, **kw):
        seen["schema"] = schema
        raise RuntimeError("stop here")

    run_job(tp.room, start_job(tp.room, tp.advertiser, template["id"])["id"], synthesize=records)
    assert seen["schema"]["converted"].categories == ("yes", "no")
    assert seen["schema"]["region"].categories is None  # a column read from a table: nothing public


def test_a_target_that_keeps_one_class_fails_the_job_with_its_own_category(tmp_path):
    from roomkit import two_party
    from synthroom.room.jobs import get_job, run_job, start_job

    tp = two_party(tmp_path, users=300, budget=5)
    sql = DEMO_TEMPLATE.replace(
        "CASE WHEN count(c.user_id) > 0 THEN 'yes' ELSE 'no' END AS converted",
        "CASE WHEN a.age > 78 THEN a.device ELSE 'adult' END AS converted",
    )
    classification = {
        **DEMO_CLASSIFICATION,
        "columns": DEMO_CLASSIFICATION["columns"][:-1] + [{"name": "converted", "type": "categorical"}],
    }
    template = tp.room.create_template(
        tp.advertiser, tp.collab, "rare", sql, epsilon=1.0, classification=classification, max_mia_score=0.8
    )
    for actor in (tp.publisher, tp.advertiser):
        template = tp.room.approve_template(actor, template["id"], template["hash"])
    done = run_job(tp.room, start_job(tp.room, tp.advertiser, template["id"])["id"])
    assert (done["state"], done["category"], done["budget_released"]) == ("failed", "target_classes_lost", False)
    view = get_job(tp.room, tp.analyst, done["id"])
    assert (
        view["reason"]
        == FAILURE_CATEGORIES["target_classes_lost"]
        == (
            "the predictive column kept fewer than two classes at this epsilon: declare its classes in the column "
            "classification or raise epsilon"
        )
    )
    assert "adult" not in str(view)  # members see the fixed text, never the detail
