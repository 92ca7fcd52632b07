import urllib.parse
import zipfile

import docx
import openpyxl
import pptx
import pytest
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from school.media import documents
from school.media.documents import DocumentRejected


def make_pdf(path, pages: list[str]):
    # STSong-Light is one of reportlab's built-in CID fonts: Chinese text without a font file.
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = canvas.Canvas(str(path))
    for text in pages:
        pdf.setFont("STSong-Light", 14)
        pdf.drawString(72, 720, text)
        pdf.showPage()
    pdf.save()
    return path


def make_docx(path):
    document = docx.Document()
    document.add_paragraph("第一段：学习党章")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "姓名", "得分"
    table.cell(1, 0).text, table.cell(1, 1).text = "张三", "95"
    document.add_paragraph("最后一段")
    document.save(path)
    return path


def make_pptx(path):
    presentation = pptx.Presentation()
    for title, body, notes in [("第一张", "理论学习", "讲稿一"), ("第二张", "组织生活", "讲稿二")]:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        slide.notes_slide.notes_text_frame.text = notes
    presentation.save(path)
    return path


def make_xlsx(path):
    workbook = openpyxl.Workbook()
    workbook.active.append(["支部", "人数"])
    workbook.active.append(["第一支部", 12])
    workbook.create_sheet("第二页").append(["备注", "按时参加"])
    workbook.save(path)
    return path


def test_pdf_text_comes_back_per_page(tmp_path):
    path = make_pdf(tmp_path / "课件.pdf", ["第一页：学习党章", "第二页：理论学习"])
    extracted = documents.extract_text(path, "pdf")
    assert len(extracted.pages) == 2
    assert "学习党章" in extracted.pages[0] and "理论学习" in extracted.pages[1]
    assert "学习党章" in extracted.text and not extracted.truncated


def test_docx_paragraphs_and_tables_are_extracted(tmp_path):
    path = make_docx(tmp_path / "a.docx")
    assert documents.sniff(path) == "docx"
    extracted = documents.extract_text(path, "docx")
    assert len(extracted.pages) == 1
    assert "学习党章" in extracted.text and "张三\t95" in extracted.text and "最后一段" in extracted.text


def test_pptx_slides_and_speaker_notes_are_extracted(tmp_path):
    path = make_pptx(tmp_path / "a.pptx")
    assert documents.sniff(path) == "pptx"
    extracted = documents.extract_text(path, "pptx")
    assert len(extracted.pages) == 2
    assert "理论学习" in extracted.pages[0] and "讲稿一" in extracted.pages[0]
    assert "组织生活" in extracted.pages[1] and "讲稿二" in extracted.pages[1]


def test_xlsx_cells_are_extracted_per_sheet(tmp_path):
    path = make_xlsx(tmp_path / "a.xlsx")
    assert documents.sniff(path) == "xlsx"
    extracted = documents.extract_text(path, "xlsx")
    assert extracted.pages == ["支部\t人数\n第一支部\t12", "备注\t按时参加"]


def test_kind_comes_from_the_bytes_not_the_name(tmp_path):
    path = make_pdf(tmp_path / "looks-like-word.docx", ["内容"])
    assert documents.sniff(path) == "pdf"
    assert documents.media_type(path) == "application/pdf"


def test_text_file_named_pdf_is_rejected(tmp_path):
    path = tmp_path / "fake.pdf"
    path.write_text("这不是 PDF，只是一段文字。", encoding="utf-8")
    assert documents.sniff(path) is None
    with pytest.raises(DocumentRejected) as rejected:
        documents.extract_text(path, "pdf")
    assert rejected.value.code == "invalid" and "PDF" in rejected.value.message


def test_corrupt_pdf_is_rejected_not_crashed(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 40)
    assert documents.sniff(path) == "pdf"
    with pytest.raises(DocumentRejected) as rejected:
        documents.extract_text(path, "pdf")
    assert rejected.value.code == "invalid"
    assert rejected.value.message == "这个文件不是有效的 PDF。"


@pytest.mark.parametrize(
    "content",
    [
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b"<!doctype html><html><body><script>alert(1)</script></body></html>",
        b"",
    ],
    ids=["svg", "html", "empty"],
)
def test_svg_html_and_empty_files_are_not_accepted(tmp_path, content):
    path = tmp_path / "picture.png"
    path.write_bytes(content)
    assert documents.sniff(path) is None


def test_zip_that_is_not_an_office_file_is_not_accepted(tmp_path):
    path = tmp_path / "archive.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("word/readme.txt", "只是一个压缩包")
    assert documents.sniff(path) is None


def test_macro_enabled_office_file_is_not_accepted(tmp_path):
    path = make_docx(tmp_path / "a.docx")
    macro = tmp_path / "a.docm"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(macro, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "[Content_Types].xml":
                data = data.replace(
                    b"wordprocessingml.document.main+xml", b"ms-word.document.macroEnabled.main+xml"
                )
            target.writestr(item, data)
    assert documents.sniff(macro) is None


@pytest.mark.parametrize(
    "head, mime",
    [
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"GIF89a", "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
    ],
    ids=["png", "jpeg", "gif", "webp"],
)
def test_images_are_known_by_their_signature_and_have_no_text(tmp_path, head, mime):
    path = tmp_path / "picture.bin"
    path.write_bytes(head + bytes(64))
    assert documents.sniff(path) == "image"
    assert documents.media_type(path) == mime
    assert documents.extract_text(path, "image") == documents.Extracted(text="", pages=[], truncated=False)


def test_max_pages_truncates(tmp_path):
    path = make_pdf(tmp_path / "a.pdf", ["第一页", "第二页", "第三页"])
    extracted = documents.extract_text(path, "pdf", max_pages=2)
    assert len(extracted.pages) == 2 and extracted.truncated


def test_max_chars_truncates(tmp_path):
    path = make_pdf(tmp_path / "a.pdf", ["一二三四五六七八九十", "第二页"])
    extracted = documents.extract_text(path, "pdf", max_chars=4)
    assert extracted.pages == ["一二三四"] and extracted.truncated


def test_extraction_past_the_time_limit_is_stopped(tmp_path):
    path = make_pdf(tmp_path / "a.pdf", ["内容"])
    with pytest.raises(DocumentRejected) as rejected:
        documents.extract_text(path, "pdf", timeout=0.01)
    assert rejected.value.code == "timeout"


def test_office_file_that_unpacks_too_large_is_refused_before_parsing(tmp_path, monkeypatch):
    path = make_docx(tmp_path / "a.docx")
    monkeypatch.setattr(documents, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(DocumentRejected) as rejected:
        documents.extract_text(path, "docx")
    assert rejected.value.code == "too_large"


def test_unknown_kind_is_unsupported(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x")
    with pytest.raises(DocumentRejected) as rejected:
        documents.extract_text(path, "svg")
    assert rejected.value.code == "unsupported"
    assert rejected.value.message == "不支持的文件类型：只能上传 PDF、Word、PPT、Excel 或图片。"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("../../x.mp4", "x.mp4"),
        ("..\\..\\evil.pdf", "evil.pdf"),
        ("\x00.pdf", "文件.pdf"),
        ("C:\\Users\\张三\\课件.pptx", "课件.pptx"),
        ("a\r\nSet-Cookie: x.pdf", "aSet-Cookie_ x.pdf"),
        ("...", "文件"),
        ("", "文件"),
        ("学习\u202egpj.exe", "学习gpj.exe"),
    ],
)
def test_safe_filename_keeps_only_a_display_name(name, expected):
    assert documents.safe_filename(name) == expected


def test_safe_filename_shortens_long_names_but_keeps_the_extension():
    name = documents.safe_filename("党" * 300 + ".pdf")
    assert name.endswith(".pdf") and name.startswith("党")
    assert len(name.encode()) <= documents.MAX_FILENAME_BYTES
    assert set(name[:-4]) == {"党"}  # cut on a character boundary


def test_content_disposition_keeps_a_chinese_name():
    header = documents.content_disposition("第一课 党章.pdf", inline=False)
    assert header.startswith('attachment; filename="file.pdf"; ')
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert urllib.parse.unquote(encoded) == "第一课 党章.pdf"
    assert header.isascii()


def test_content_disposition_inline_and_ascii_name():
    header = documents.content_disposition('report "final".pdf', inline=True)
    assert header == "inline; filename=\"report _final.pdf\"; filename*=UTF-8''report%20_final_.pdf"
