"""Failures with the real MariaDB server: a database that is not there yet, refused credentials, then a retry."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from integrations.base import SubjectQuery
from integrations.sources import SourceContext, build_source
from tests.dbs import MARIADB_ADMIN, mariadb_database, run_sql, shop_schemas, unique_name
from tests.gather_fakes import NOW, make_gatherer
from tests.test_sql_prestashop import ins

EMAIL = "lea.petit@example.fr"


def test_a_missing_database_fails_visibly_and_a_retry_succeeds_once_it_is_back(tmp_path):
    with mariadb_database(*shop_schemas()) as good_url:
        run_sql(good_url, [ins("ps_customer", id_customer=1, id_gender=2, firstname="Léa", lastname="Petit",
                               email=EMAIL, passwd="", date_add="2024-01-01", date_upd="2024-01-01")])
        missing = unique_name()
        context = SourceContext(now=lambda: NOW)
        shop = build_source({"name": "shop", "type": "sql", "preset": "prestashop", "timeout": 5,
                             "url": good_url.rsplit("/", 1)[0] + f"/{missing}?charset=utf8mb4"}, context)
        refused = build_source({"name": "backoffice", "type": "sql", "preset": "prestashop",
                                "url": good_url.replace("root@", "root:wrong-password@")}, context)
        gatherer = make_gatherer(tmp_path, [shop, refused])

        first = gatherer.gather(SubjectQuery(emails=[EMAIL], case_id="c-9"), ["access"])
        assert not first.complete
        assert first.sources["shop"]["status"] == "failed"
        assert "does not exist" in first.sources["shop"]["error"]
        assert first.sources["backoffice"]["status"] == "auth_failed"
        assert "credentials" in first.sources["backoffice"]["error"]
        assert gatherer.check()["backoffice"] and "credentials" in gatherer.check()["backoffice"]

        # The database comes back (restored from a backup): retrying the one source completes the answer.
        admin = create_engine(MARIADB_ADMIN)
        try:
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE `{missing}` CHARACTER SET utf8mb4"))
            try:
                import subprocess

                for path in shop_schemas()[:1]:
                    with path.open("rb") as handle:
                        subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", missing], stdin=handle,
                                       check=True, capture_output=True, timeout=300)
                run_sql(good_url.rsplit("/", 1)[0] + f"/{missing}?charset=utf8mb4",
                        [ins("ps_customer", id_customer=7, id_gender=2, firstname="Léa", lastname="Petit",
                             email=EMAIL, passwd="", date_add="2024-01-01", date_upd="2024-01-01")])
                second = gatherer.retry(first, "shop")
                assert second.sources["shop"]["status"] == "ok" and second.sources["shop"]["count"] == 1
                assert [r.record_id for r in second.records if r.source == "shop"] == ["7"]
                assert second.failures == {"backoffice": first.failures["backoffice"]}  # still refused
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS `{missing}`"))
        finally:
            admin.dispose()
