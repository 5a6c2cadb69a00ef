"""The template environment: the shared _params.j2, custom template directories, the digest."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from polygen.build import BuildOptions, run
from polygen.cli import cli
from polygen.errors import TemplateError
from polygen.render import Renderer

from .conftest import TEMPLATES


@pytest.fixture
def tdir(tmp_path):
    """A private copy of the shipped templates, as a user starts a custom directory."""
    return shutil.copytree(TEMPLATES, tmp_path / "templates")


def test_editing_the_shared_macro_rebuilds_what_uses_it(build_opts, tdir):
    opts = BuildOptions(build_opts.inventory, build_opts.out, tdir, build_opts.firmware)
    run(opts)
    params = tdir / "_params.j2"
    params.write_text(params.read_text().replace('indent="  "', 'indent="\\t"'))
    r = run(opts)
    # every file written through the macro; the directory does not use it
    assert sorted(r.paths) == ["000000000000.cfg", "0004f2000330-phone.cfg", "0004f2000331-phone.cfg",
                               "0004f2005000-phone.cfg", "64167f000410-phone.cfg", "bootstrap/SPIP330.cfg",
                               "bootstrap/SPIP331.cfg", "bootstrap/SSIP5000.cfg", "bootstrap/VVX410.cfg",
                               "site.cfg"]
    assert "\n\t<reg\n\t  reg.1.address=" in (build_opts.out / "0004f2000330-phone.cfg").read_text()


def test_a_custom_phone_template_imports_the_macro(build_opts, tdir):
    phone = tdir / "phone.cfg.j2"
    phone.write_text(phone.read_text().replace(
        "{{- elements(sections) }}", '{{- elements(sections + [("custom", [("up.custom", phone.mac)])]) }}'))
    run(BuildOptions(build_opts.inventory, build_opts.out, tdir, build_opts.firmware))
    assert (build_opts.out / "0004f2000330-phone.cfg").read_text().endswith(
        '  <custom\n    up.custom="0004f2000330"\n  />\n</polycomConfig>\n')


def test_a_missing_shared_file_is_named_with_what_to_do(build_opts, tdir):
    (tdir / "_params.j2").unlink()
    args = ["build", "-i", str(build_opts.inventory), "-o", str(build_opts.out), "-t", str(tdir),
            "--firmware", str(build_opts.firmware)]
    r = CliRunner().invoke(cli, args)
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr == (f"Error: {tdir}/bootstrap.cfg.j2:1: uses '_params.j2', which is not in {tdir}; "
                        "copy it from polygen's templates/ folder\n")
    assert not build_opts.out.exists()


def test_a_syntax_error_in_the_shared_file_names_it(tdir):
    (tdir / "_params.j2").write_text("{% macro elements(elems) %}\n{% for x in elems %}\n{% endmacro %}\n")
    with pytest.raises(TemplateError, match=rf"^{tdir}/_params.j2:3: template syntax error: "):
        Renderer(tdir)


def test_a_file_included_by_an_expression_counts_in_the_digest(tdir):
    (tdir / "uc.j2").write_text("<!-- uc -->\n")
    (tdir / "sip3.j2").write_text("<!-- sip3 -->\n")
    site = tdir / "site.cfg.j2"
    site.write_text(site.read_text() + '{% include dialect ~ ".j2" %}')
    before = Renderer(tdir).digest
    (tdir / "uc.j2").write_text("<!-- UC -->\n")
    assert Renderer(tdir).digest != before


def test_an_optional_include_may_be_missing(tdir):
    site = tdir / "site.cfg.j2"
    site.write_text(site.read_text() + '{% include "local.j2" ignore missing %}')
    before = Renderer(tdir).digest
    (tdir / "local.j2").write_text("<!-- local -->\n")
    assert Renderer(tdir).digest != before
