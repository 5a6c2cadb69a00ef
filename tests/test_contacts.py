"""contacts: outside numbers in the company directory (inventory contract, directory rendering)."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET

import pytest

from polygen.build import BuildOptions, run
from polygen.errors import InventoryError
from polygen.inventory import Contact, load

from .conftest import TEMPLATES

CONTACTS = """\
contacts:
  - number: "+15551234567"
    first_name: Alan
    last_name: Turing
  - number: sip:helpdesk@example.com
    label: IT Helpdesk
  - number: "0100"
    last_name: Aardvark & Co
    label: "Suppliers <main>"
"""


def write(directory, name, text):
    (directory / name).write_text(textwrap.dedent(text))


def problems(directory) -> list[str]:
    with pytest.raises(InventoryError) as exc:
        load(directory, env={})
    return [str(p) for p in exc.value.problems]


def test_contacts_load_as_written(inventory_dir):
    write(inventory_dir, "contacts.yaml", CONTACTS)
    inv = load(inventory_dir, env={})
    assert inv.contacts == (Contact("+15551234567", "Alan", "Turing"),
                            Contact("sip:helpdesk@example.com", label="IT Helpdesk"),
                            Contact("0100", "", "Aardvark & Co", "Suppliers <main>"))


def test_an_inventory_without_contacts_has_none(inventory_dir):
    assert load(inventory_dir, env={}).contacts == ()


def test_contact_problems_are_all_reported_with_their_place(inventory_dir, monkeypatch):
    monkeypatch.chdir(inventory_dir.parent)
    write(inventory_dir, "contacts.yaml", """\
        contacts:
          - number: "1000"
            first_name: Someone
          - first_name: No number
          - number: "+15550000001"
          - number: "+15550000002"
            first_name: Ok
            nickname: Bob
          - number: "+15550000002"
            first_name: Twice
          - number: " 123"
            first_name: Spaces
          - number: "+15550000003"
            last_name: "%s"
        """ % ("é" * 21))
    assert problems("inventory") == [
        "inventory/contacts.yaml:2: contacts[0].number: directory contact '1000' is also used by extension "
        "'1005' (inventory/extensions.yaml:24); the phone directory needs unique contacts",
        "inventory/contacts.yaml:4: contacts[1].number: missing required field 'number'",
        "inventory/contacts.yaml:5: contacts[2]: contact '+15550000001' needs a first_name, last_name or label "
        "to show in the directory",
        "inventory/contacts.yaml:8: contacts[3].nickname: unknown key 'nickname'; allowed: number, first_name, "
        "last_name, label",
        "inventory/contacts.yaml:9: contacts[4].number: directory contact '+15550000002' is also used by "
        "contacts (inventory/contacts.yaml:6); the phone directory needs unique contacts",
        "inventory/contacts.yaml:11: contacts[5].number: ' 123' is not a number or SIP URI the phones can dial "
        "(no spaces around it, at most 255 characters)",
        "inventory/contacts.yaml:14: contacts[6].last_name: 42 bytes in UTF-8, but at most 40 fit in the phone "
        "directory; shorten it",
    ]


def test_a_contact_may_reuse_the_number_of_an_unlisted_extension(inventory_dir):
    # 1099 has directory: false, so its number is free for the directory
    write(inventory_dir, "contacts.yaml", 'contacts:\n  - {number: "1099", first_name: Conference}\n')
    assert load(inventory_dir, env={}).contacts == (Contact("1099", "Conference"),)


def test_directory_lists_extensions_and_contacts_sorted_by_name(inventory_dir, tmp_path):
    write(inventory_dir, "contacts.yaml", CONTACTS)
    out = tmp_path / "out"
    run(BuildOptions(inventory_dir, out, TEMPLATES, tmp_path / "firmware"))
    text = (out / "contacts/000000000000-directory.xml").read_text()
    items = [(i.findtext("fn"), i.findtext("ln"), i.findtext("ct"), i.findtext("lb"))
             for i in ET.fromstring(text).iter("item")]
    assert items == [
        ("", "", "sip:helpdesk@example.com", "IT Helpdesk"),
        ("", "Aardvark & Co", "0100", "Suppliers <main>"),
        ("Charles", "Babbage", "1002", None),
        ("Front", "Desk", "1000", None),
        ("Grace", "Hopper", "1003", None),
        ("Ada", "Lovelace", "1001", None),
        ("Renée", "O'Brien & Søn", "1004", None),
        ("Alan", "Turing", "+15551234567", None),
    ]
    # escaped once, as XML needs
    assert "<ln>Aardvark &amp; Co</ln><ct>0100</ct><lb>Suppliers &lt;main&gt;</lb>" in text


def test_changing_a_contact_rewrites_the_directory_only(inventory_dir, tmp_path):
    write(inventory_dir, "contacts.yaml", CONTACTS)
    opts = BuildOptions(inventory_dir, tmp_path / "out", TEMPLATES, tmp_path / "firmware")
    run(opts)
    write(inventory_dir, "contacts.yaml", CONTACTS.replace("Alan", "Alan M."))
    r = run(opts)
    assert r.paths == ("contacts/000000000000-directory.xml",)
