"""Building blocks of RUN/report.html: style, inlined images, thumbnails, the file-name filter. No torch."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from PIL import Image

from ganprov.core import volumes
from ganprov.core.bit_depth import to_8bit
from ganprov.core.volumes import Reading

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}.small{color:#666;font-size:12px}
.group{border-top:2px solid #888;margin-top:2em}.undetermined{color:#a60}
.grid img{width:64px;height:64px;image-rendering:pixelated;margin:1px;vertical-align:middle}
.grid{margin:4px 0}.grid .caption{display:inline-block;width:150px;font-size:12px;color:#444}
#unknown-images td:nth-child(2){text-align:left;font-family:monospace}:target{background:#ffe9a8}"""

# Filters the table of unknown images by file name; ?q=TEXT in the page's address fills the box, so a link
# can open the report at one file.
SEARCH_SCRIPT = """<script>
const box = document.getElementById("search");
const rows = Array.from(document.querySelectorAll("#unknown-images tbody tr"));
function filter() {
  const query = box.value.toLowerCase();
  let shown = 0;
  for (const row of rows) {
    row.hidden = !row.cells[1].textContent.toLowerCase().includes(query);
    shown += row.hidden ? 0 : 1;
  }
  document.getElementById("shown").textContent = shown + " of " + rows.length + " shown";
}
box.addEventListener("input", filter);
box.value = new URLSearchParams(location.search).get("q") || "";
filter();
</script>"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def img_tag(png: bytes, alt: str, style: str = "") -> str:
    style = f' style="{esc(style)}"' if style else ""
    return f'<img alt="{esc(alt)}"{style} src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def thumbnail(path: Path, size: int = 64, reading: Reading = Reading()) -> bytes | None:
    """A small PNG of an image (a DICOM frame or NIfTI slice windowed as in training), or None when it cannot
    be read (moved, deleted, broken). Greyscale stays one channel: a third of the bytes."""
    try:
        file, _ = volumes.split_item(path)
        if volumes.is_dicom(file) or volumes.is_nifti(file):
            image = Image.fromarray(volumes.read(path, reading))
        else:
            with Image.open(path) as opened:
                image = to_8bit(opened)  # 16-bit greyscale stretched over its range, as the network sees it
        image.thumbnail((size, size))
        return png(image)
    except (OSError, ValueError):
        return None


def image_or_name(png_bytes: bytes | None, name: str) -> str:
    """The image, or its name where it could not be read."""
    return img_tag(png_bytes, name) if png_bytes else f"<span class=small>{esc(name)}</span>"
