"""Changing a user's role and 执法证号: API (PATCH), CLI (set-role), and the rules they share."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from click.testing import CliRunner

from server.cli import main
from server.errors import Conflict
from server.models import Role, User
from server.services import users
from tests.server.conftest import World, parts
from tests.server.manifest_support import cli_env


def _patch(world: World, who: str, user: str, body: dict[str, Any]) -> Any:
    api = world.as_(who)
    return api.client.patch(
        f"/api/v1/users/{world.people[user].id}", json=body, headers=api.headers
    )


def test_an_admin_changes_role_and_cert_no_and_the_token_follows_at_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="casetrail.security")
    reviewer_api = world.as_("a_reviewer")
    assert reviewer_api.get("/users").status_code == 403  # not an admin yet
    changed = _patch(world, "a_admin", "a_reviewer", {"role": "head", "cert_no": "A-HEAD-01"})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["role"] == "head" and changed.get_json()["cert_no"] == "A-HEAD-01"
    [audit] = [r.getMessage() for r in caplog.records if "changed by" in r.getMessage()]
    admin_id = world.people["a_admin"].id
    assert f"a-reviewer changed by user:{admin_id}: role reviewer -> head" in audit
    made_admin = _patch(world, "a_admin", "a_reviewer", {"role": "admin"})
    assert made_admin.get_json()["cert_no"] == "A-HEAD-01"  # a field left out stays
    assert reviewer_api.get("/users").status_code == 200  # the same token, the new role
    # an inspector without 执法证号 is refused; cert_no null removes it from others
    refused = _patch(world, "a_admin", "a_reviewer", {"role": "inspector", "cert_no": None})
    assert refused.status_code == 422 and "cert_no" in refused.get_json()["errors"]
    cleared = _patch(world, "a_admin", "a_reviewer", {"cert_no": None})
    assert cleared.status_code == 200 and cleared.get_json()["cert_no"] is None


def test_mass_assignment_other_agencies_and_non_admins_are_refused(world: World) -> None:
    for body in ({"active": False}, {"username": "boss"}, {"agency_id": "x", "role": "admin"}):
        refused = _patch(world, "a_admin", "a_insp1", body)
        assert refused.status_code == 422, body
    assert (
        world.as_("a_admin").get(f"/users/{world.people['a_insp1'].id}").get_json()["role"]
        == "inspector"
    )
    assert _patch(world, "a_admin", "b_insp1", {"role": "reviewer"}).status_code == 404
    assert _patch(world, "a_reviewer", "a_insp1", {"role": "admin"}).status_code == 403
    assert _patch(world, "a_insp1", "a_insp1", {"role": "admin"}).status_code == 403
    taken = _patch(world, "a_admin", "a_insp1", {"cert_no": "A00002"})
    assert taken.status_code == 409 and "执法证号" in taken.get_json()["message"]


def test_the_last_active_admin_keeps_the_role(world: World) -> None:
    refused = _patch(world, "a_admin", "a_admin", {"role": "reviewer"})
    assert refused.status_code == 409 and "最后一位" in refused.get_json()["message"]
    assert _patch(world, "a_admin", "a_archivist", {"role": "admin"}).status_code == 200
    # with a second admin, the first may step down
    stepped = _patch(world, "a_admin", "a_admin", {"role": "reviewer"})
    assert stepped.status_code == 200 and stepped.get_json()["role"] == "reviewer"
    again = _patch(world, "a_archivist", "a_archivist", {"role": "archivist"})
    assert again.status_code == 409


def test_cli_set_role(world: World) -> None:
    runner, env = CliRunner(), cli_env(world)
    done = runner.invoke(
        main, ["users", "set-role", "a-insp3", "--role", "head", "--cert-no", "A-99"], env=env
    )
    assert done.exit_code == 0, done.output
    assert "负责人 head" in done.output and "A-99" in done.output
    listed = runner.invoke(main, ["users", "list", "--agency", "A-AGENCY"], env=env)
    assert "负责人 head" in listed.output
    last = runner.invoke(main, ["users", "set-role", "b-admin", "--role", "archivist"], env=env)
    assert last.exit_code == 1 and "最后一位在用管理员" in last.output
    nothing = runner.invoke(main, ["users", "set-role", "a-insp3"], env=env)
    assert nothing.exit_code == 2 and "--role" in nothing.output


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_two_admins_demoting_each_other_at_once_leave_one_admin(world: World) -> None:
    assert _patch(world, "a_admin", "a_archivist", {"role": "admin"}).status_code == 200
    factory = parts(world.app).unit_of_work
    outcome: list[str] = []

    def demote_the_other() -> None:
        with factory() as uow:
            other = uow.session.get(User, world.people["a_archivist"].id)
            try:
                users.change_user(uow, other, users.UserChange(role=Role.ARCHIVIST))
                uow.commit()
                outcome.append("demoted")
            except Conflict:
                outcome.append("refused")

    with factory() as uow:
        first = uow.session.get(User, world.people["a_admin"].id)
        users.change_user(uow, first, users.UserChange(role=Role.REVIEWER))
        racing = threading.Thread(target=demote_the_other)
        racing.start()
        racing.join(timeout=1.0)
        assert racing.is_alive()  # waits for the first change's row locks
        uow.commit()
    racing.join(timeout=10)
    assert outcome == ["refused"]
    roles = {u["username"]: u["role"] for u in world.as_("a_archivist").get("/users").get_json()}
    assert (roles["a-admin"], roles["a-archivist"]) == ("reviewer", "admin")
