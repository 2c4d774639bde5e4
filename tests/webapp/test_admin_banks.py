"""The Question banks pages: list, detail per language, upload, duplicate, edit."""

from __future__ import annotations

import html
import re
from io import BytesIO
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from surveys import bank_store
from surveys.models import AuditEvent, CustomBank, UserRole
from tests.surveys.test_banks import MINIMAL
from tests.webapp.test_admin import CSRF, add_user, login
from webapp.extensions import db


def custom_sources(app) -> dict[str, str]:
    with app.app_context():
        return {b.key: b.source for b in db.session.scalars(select(CustomBank))}


def bank_events(app) -> list[tuple[str, str, dict]]:
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action.startswith("bank.")).order_by(AuditEvent.id)
        )
        return [(e.action, e.target, e.detail) for e in events]


def textarea(page: str, name: str = "text") -> str:
    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, "no textarea"
    return html.unescape(match.group(1)).lstrip("\r\n")


def upload_text(client, text: str, **extra):
    return client.post("/admin/banks", data={"text": text, **extra})


# -- access -------------------------------------------------------------------------------


def test_a_signed_out_visitor_is_sent_to_login(client):
    for method, url in [
        ("get", "/admin/banks"),
        ("get", "/admin/banks/pulse"),
        ("post", "/admin/banks"),
        ("post", "/admin/banks/pulse/duplicate"),
        ("get", "/admin/banks/x/edit"),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert urlsplit(response.headers["Location"]).path == "/admin/login"


def test_admins_may_use_the_pages_too(app, client):
    add_user(app, "boss@example.com", UserRole.ADMIN)
    login(client, "boss@example.com")
    assert client.get("/admin/banks").status_code == 200
    assert client.get("/admin/banks/leadership").status_code == 200


# -- browsing -----------------------------------------------------------------------------


def test_the_list_shows_bundled_and_custom_banks(app, hr_client):
    with app.app_context():
        bank_store.save_bank(db.session, MINIMAL)
        db.session.commit()
    page = hr_client.get("/admin/banks").get_data(as_text=True)
    rows = dict(re.findall(r"<code>([a-z_]+)</code></a></th>(.*?)</tr>", page, re.S))
    assert set(rows) >= {"leadership", "pulse", "individual_contributor", "mini"}
    leadership = re.findall(r"<td>(.*?)</td>", rows["leadership"], re.S)
    assert leadership[:5] == ["Leadership 360", "2026.1", "en, de, fr", "9", "45"]
    assert "bundled" in leadership[5]
    mini = re.findall(r"<td>(.*?)</td>", rows["mini"], re.S)
    assert mini[:5] == ["Mini bank", "1", "en, de", "2", "3"]
    assert "custom" in mini[5]


def test_the_detail_shows_items_scale_and_questions_in_the_chosen_language(hr_client):
    english = html.unescape(hr_client.get("/admin/banks/leadership").get_data(as_text=True))
    assert "Setting direction" in english
    assert "I set clear priorities for the team." in english
    assert "{name} sets clear priorities for the team." in english
    assert "Strongly agree" in english
    assert "Not able to judge" in english
    assert 'lang="en"' in english
    assert 'href="/admin/banks/leadership?lang=de"' in english

    german = hr_client.get("/admin/banks/leadership?lang=de")
    page = html.unescape(german.get_data(as_text=True))
    assert '<div lang="de"' in page
    assert '<strong aria-current="page">de</strong>' in page
    assert "Setting direction" not in page
    assert "Strongly agree" not in page
    unknown = hr_client.get("/admin/banks/leadership?lang=xx").get_data(as_text=True)
    assert "Setting direction" in unknown  # falls back to the main language


def test_the_yaml_of_any_bank_downloads(app, hr_client):
    response = hr_client.get("/admin/banks/pulse/yaml")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="pulse.yaml"'
    with app.app_context():
        assert response.get_data(as_text=True) == bank_store.bank_source(db.session, "pulse")
    assert hr_client.get("/admin/banks/nope/yaml").status_code == 404


def test_an_unknown_bank_is_404(hr_client):
    assert hr_client.get("/admin/banks/nope").status_code == 404
    assert hr_client.get("/admin/banks/nope/edit").status_code == 404


# -- upload -------------------------------------------------------------------------------


def test_upload_pasted_text_saves_a_custom_bank(app, hr_client):
    response = upload_text(hr_client, MINIMAL)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/banks/mini")
    assert custom_sources(app) == {"mini": MINIMAL}
    assert bank_events(app) == [("bank.upload", "bank:mini", {"version": "1", "replaced": False})]
    assert "Mini bank" in hr_client.get("/admin/banks/mini").get_data(as_text=True)


def test_upload_a_file(app, hr_client):
    response = hr_client.post(
        "/admin/banks",
        data={"file": (BytesIO(MINIMAL.replace("\n", "\r\n").encode()), "mini.yaml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    assert custom_sources(app) == {"mini": MINIMAL}


def test_a_broken_bank_shows_every_error_with_its_line_and_keeps_the_text(app, hr_client):
    broken = MINIMAL.replace("    title: Listening\n", "").replace(
        "  na_label: Not able to judge\n", "  na_label: Not able to judge\n  na_label: again\n"
    )
    response = upload_text(hr_client, broken)
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    errors = page[
        page.index('id="bank-errors"') : page.index("</ul>", page.index('id="bank-errors"'))
    ]
    assert re.search(r"line 11 · competencies\[0\]\.title</span>\s*is required", errors), errors
    assert re.search(r"line 9</span>\s*duplicate key 'na_label'", errors), errors
    assert textarea(response.get_data(as_text=True)) == broken
    assert custom_sources(app) == {}


def test_invalid_yaml_and_bad_encoding_are_reported_in_place(app, hr_client):
    response = upload_text(hr_client, "key: [unclosed\ntitle: x\n")
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    assert "invalid YAML" in page
    assert "line " in page
    response = hr_client.post(
        "/admin/banks",
        data={"file": (BytesIO(b"key: caf\xe9\n"), "latin1.yaml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "latin1.yaml is not UTF-8" in response.get_data(as_text=True)
    assert upload_text(hr_client, "  ").status_code == 400
    assert custom_sources(app) == {}


def test_a_bundled_key_is_refused_even_when_replacing(app, hr_client):
    text = MINIMAL.replace("key: mini", "key: pulse")
    response = upload_text(hr_client, text, replace="y")
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    assert "line 2 · key" in page
    assert "'pulse' is the key of a bundled bank" in page
    assert textarea(response.get_data(as_text=True)) == text
    assert custom_sources(app) == {}


def test_an_existing_custom_key_needs_an_explicit_replace(app, hr_client):
    upload_text(hr_client, MINIMAL)
    second = MINIMAL.replace("title: Mini bank", "title: Mini bank v2")
    response = upload_text(hr_client, second)
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)
    assert "tick “Replace the custom bank" in response.get_data(as_text=True)
    assert custom_sources(app) == {"mini": MINIMAL}
    assert upload_text(hr_client, second, replace="y").status_code == 303
    assert custom_sources(app) == {"mini": second}
    assert [e[2]["replaced"] for e in bank_events(app)] == [False, True]


# -- duplicate and edit -------------------------------------------------------------------


def test_duplicate_then_edit_round_trip(app, hr_client):
    response = hr_client.post("/admin/banks/pulse/duplicate", data={"new_key": "pulse_2027"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/banks/pulse_2027/edit")
    with app.app_context():
        original = bank_store.bank_source(db.session, "pulse")
    copy = custom_sources(app)["pulse_2027"]
    assert copy == original.replace("key: pulse\n", "key: pulse_2027\n", 1)

    form = hr_client.get("/admin/banks/pulse_2027/edit").get_data(as_text=True)
    assert textarea(form) == copy
    changed = copy.replace("title: ", "title: Edited ", 1)
    edited = re.sub(r"^version: .*$", 'version: "2027.1"', changed, count=1, flags=re.M)
    response = hr_client.post("/admin/banks/pulse_2027/edit", data={"text": edited})
    assert response.status_code == 303
    assert custom_sources(app)["pulse_2027"] == edited
    assert "Edited " in hr_client.get("/admin/banks/pulse_2027").get_data(as_text=True)
    assert [e[:2] for e in bank_events(app)] == [
        ("bank.duplicate", "bank:pulse_2027"),
        ("bank.edit", "bank:pulse_2027"),
    ]
    assert bank_events(app)[0][2] == {"from": "pulse"}


def test_an_invalid_edit_keeps_the_text_and_stores_nothing(app, hr_client):
    hr_client.post("/admin/banks/pulse/duplicate", data={"new_key": "mine"})
    before = custom_sources(app)["mine"]
    broken = before.replace("version:", "versio:", 1)
    response = hr_client.post("/admin/banks/mine/edit", data={"text": broken})
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    assert "versio" in page
    assert "line " in page
    assert textarea(response.get_data(as_text=True)) == broken
    renamed = before.replace("key: mine", "key: yours")
    response = hr_client.post("/admin/banks/mine/edit", data={"text": renamed})
    assert "the key cannot change here" in html.unescape(response.get_data(as_text=True))
    assert custom_sources(app) == {"mine": before}


def test_bundled_banks_cannot_be_edited(app, hr_client):
    response = hr_client.get("/admin/banks/pulse/edit")
    assert response.status_code == 303
    response = hr_client.post("/admin/banks/pulse/edit", data={"text": "key: pulse"})
    assert response.status_code == 303
    assert "read-only" in hr_client.get("/admin/banks/pulse").get_data(as_text=True)


@pytest.mark.parametrize(
    ("new_key", "problem"),
    [("leadership", "bundled bank"), ("Bad Key", "is not valid"), ("", "Choose a key")],
)
def test_duplicate_to_a_bad_key_is_refused_in_place(app, hr_client, new_key, problem):
    response = hr_client.post("/admin/banks/pulse/duplicate", data={"new_key": new_key})
    assert response.status_code == 400
    assert problem in html.unescape(response.get_data(as_text=True))
    assert custom_sources(app) == {}


def test_the_posts_need_a_csrf_token(app, hr_client):
    upload_text(hr_client, MINIMAL)
    app.config["WTF_CSRF_ENABLED"] = True
    other = MINIMAL.replace("key: mini", "key: other")
    assert upload_text(hr_client, other).status_code == 400
    assert hr_client.post("/admin/banks/pulse/duplicate", data={"new_key": "p2"}).status_code == 400
    edited = MINIMAL.replace("Mini bank", "Changed")
    assert hr_client.post("/admin/banks/mini/edit", data={"text": edited}).status_code == 400
    assert custom_sources(app) == {"mini": MINIMAL}

    token = CSRF.search(hr_client.get("/admin/banks").get_data(as_text=True)).group(1)
    assert upload_text(hr_client, other, csrf_token=token).status_code == 303
    assert set(custom_sources(app)) == {"mini", "other"}
