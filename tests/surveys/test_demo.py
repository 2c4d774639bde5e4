"""The demo organisation reads like a real one: comments answer the question they sit
under, and the participant's own comments are in the first person."""

from __future__ import annotations

from sqlalchemy import select

from surveys.demo import COMMENTS, load_demo
from surveys.models import Relationship, Response, ResponseComment


def test_demo_comments_answer_their_question_in_the_right_voice(session):
    load_demo(session, base_url="http://localhost")
    session.commit()
    by_text = {theirs: (q, "others") for q, theirs, _ in COMMENTS}
    by_text |= {own: (q, "self") for q, _, own in COMMENTS}
    rows = session.execute(
        select(Response.relationship, ResponseComment.question_id, ResponseComment.text).join(
            ResponseComment, ResponseComment.response_id == Response.id
        )
    ).all()
    voices = set()
    for relationship, question_id, text in rows:
        question, voice = by_text[text]
        assert question_id == question
        assert voice == ("self" if relationship == Relationship.SELF else "others")
        voices.add(voice)
    assert voices == {"self", "others"}
