"""Rendering: the management HTML of an executed notebook, and ``failed.html``.

Cell tags understood by the management HTML: ``remove-cell`` drops a cell,
``remove-output`` drops its outputs (code and prompts are never shown; the
``parameters`` cells are dropped). Output on stderr (warnings) goes to
``run.log``, not to management.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retention_study.config import PACKAGE_DIR

TEMPLATES_DIR = PACKAGE_DIR / "templates"
MANAGEMENT_TEMPLATE = "management.html.j2"
INDEX_TEMPLATE = "index.html.j2"
#: Cell tags for the management HTML (nbconvert's TagRemovePreprocessor).
REMOVE_CELL_TAGS = frozenset({"remove-cell", "remove_cell", "parameters", "injected-parameters"})
REMOVE_OUTPUT_TAGS = frozenset({"remove-output", "remove_output"})
FAILED_NOTICE = "failed.html"
FAILED_TEMPLATE = "failed.html.j2"


def render_html(executed: Path, target: Path, title: str | None = None,
                source_dir: Path | None = None) -> tuple[str, list[str]]:
    """Render the management HTML of an executed notebook; returns (html, stderr texts).

    Code, prompts and cells tagged ``remove-cell`` are dropped; outputs of cells
    tagged ``remove-output`` too; stderr streams are returned (for the log)
    instead of shown. Images, including markdown images relative to
    ``source_dir`` (the source notebook's folder), are embedded.
    """
    import nbformat
    from traitlets.config import Config

    nb = nbformat.read(str(executed), as_version=4)
    stderr = _pop_stderr(nb)
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = set(REMOVE_CELL_TAGS)
    config.TagRemovePreprocessor.remove_all_outputs_tags = set(REMOVE_OUTPUT_TAGS)
    exporter = _safe_html_exporter()(
        config=config, template_name="lab", template_file=MANAGEMENT_TEMPLATE,
        extra_template_basedirs=[str(TEMPLATES_DIR)], extra_template_paths=[str(TEMPLATES_DIR)],
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
        embed_images=True,
    )
    meta = {"name": title or target.stem, "path": str(source_dir or executed.parent)}
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": meta})
    target.write_text(body, encoding="utf-8")
    return body, stderr


def _safe_html_exporter() -> type:
    """nbconvert's HTMLExporter whose markdown never becomes markup it was not written as.

    The narrative's markdown quotes the data (segment values, column names, stated
    exit reasons); nbconvert renders markdown with raw HTML passed through and
    ``javascript:`` links allowed. Here raw HTML in markdown is shown as text and
    harmful link protocols are dropped, for markdown outputs and cells alike: a
    CRM export's ``<svg onload=...>`` reads as what it is.
    """
    from jinja2 import pass_context
    from mistune.renderers.html import HTMLRenderer
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class TextOnlyRenderer(IPythonRenderer):
        # nbconvert's renderer re-parses raw HTML to embed its images before escaping it:
        # the text would come out rewritten (attributes reordered, tags closed).
        def block_html(self, html: str) -> str:
            return HTMLRenderer.block_html(self, html)

        def inline_html(self, html: str) -> str:
            return HTMLRenderer.inline_html(self, html)

    class SafeMarkdownHTMLExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context: Any, source: str) -> str:
            cell = context.get("cell", {})
            path = context.get("resources", {}).get("metadata", {}).get("path", "")
            renderer = TextOnlyRenderer(
                escape=True, allow_harmful_protocols=False,
                attachments=cell.get("attachments", {}), embed_images=self.embed_images,
                path=path, anchor_link_text=self.anchor_link_text,
                exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options,
            )
            return MarkdownWithMath(renderer=renderer).render(source)

    return SafeMarkdownHTMLExporter


def _pop_stderr(nb: Any) -> list[str]:
    texts = []
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        texts += [o.get("text", "") for o in outputs if o.get("name") == "stderr"]
        if outputs:
            cell["outputs"] = [o for o in outputs if o.get("name") != "stderr"]
    return texts


def templates() -> Any:
    """The package's jinja2 templates, autoescaped."""
    import jinja2

    # Autoescape: run names, file names and error messages come from the data and the config.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                              autoescape=True)


def write_failed_notice(run_dir: Path, manifest: dict[str, Any]) -> Path:
    """``failed.html`` in a failed run's folder: what failed and every problem, in plain words."""
    page = templates().get_template(FAILED_TEMPLATE).render(
        run=manifest, notebook=(run_dir / "report.ipynb").is_file())
    target = run_dir / FAILED_NOTICE
    target.write_text(page, encoding="utf-8")
    return target
