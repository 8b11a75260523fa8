"""What never leaves in an export, whatever the mapping says."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from integrations.sources.masking import HASH_WITHHELD, SECRET_WITHHELD, clean_fields, mask_cards_in_text


def test_columns_named_as_secrets_are_withheld_even_without_a_mapping():
    fields = clean_fields({"user_pass": "$P$B123", "password_hash": "argon2", "api_key": "k", "session_tokens": "t",
                           "token_id": 5, "last_passwd_gen": "2024-01-01", "meta_key": "x", "card_number": "4111 1111",
                           "email": "a@example.fr", "empty_secret": ""})
    assert fields["user_pass"] == HASH_WITHHELD and fields["password_hash"] == HASH_WITHHELD
    assert fields["api_key"] == SECRET_WITHHELD and fields["session_tokens"] == SECRET_WITHHELD
    assert fields["token_id"] == 5 and fields["last_passwd_gen"] == "2024-01-01" and fields["meta_key"] == "x"
    assert fields["card_number"] == "**** 1111" and fields["empty_secret"] == ""


def test_card_numbers_in_free_text_keep_only_the_last_four_digits():
    assert mask_cards_in_text("carte 4111-1111-1111-1111 ok") == "carte **** 1111 ok"
    assert mask_cards_in_text("5555555555554444") == "**** 4444"
    # Not card numbers (Luhn fails, or too short): left alone.
    assert mask_cards_in_text("commande 1234567890123456") == "commande 1234567890123456"
    assert mask_cards_in_text("tel 0612345678") == "tel 0612345678"


def test_values_become_json_types():
    fields = clean_fields({"total": Decimal("12.500000"), "whole": Decimal("3.000"), "day": date(2024, 1, 2),
                           "at": datetime(2024, 1, 2, 3, 4, 5), "raw": b"\xff\x00", "ip": 3405803781},
                          transform={"ip": "ipv4_int"})
    assert fields == {"total": "12.5", "whole": "3", "day": "2024-01-02", "at": "2024-01-02T03:04:05",
                      "raw": "base64:/wA=", "ip": "203.0.113.5"}


def test_mapping_masks_win_and_drop_removes():
    assert clean_fields({"note": "x", "secret": "y"}, mask={"note": "drop", "secret": "show"}) == {"secret": "y"}
