import pytest

from school.media.subtitles import Cue, SubtitleRejected, parse, to_vtt

SRT = """1
00:00:01,000 --> 00:00:03,500
同志们好

2
00:00:04,000 --> 00:01:02,250
今天学习党章
第二行
"""


def rejection(data: bytes) -> SubtitleRejected:
    with pytest.raises(SubtitleRejected) as rejected:
        parse(data)
    return rejected.value


def test_srt_in_utf8_is_parsed():
    assert parse(SRT.encode()) == [
        Cue(1000, 3500, "同志们好"),
        Cue(4000, 62250, "今天学习党章\n第二行"),
    ]


def test_srt_in_gbk_is_parsed():
    assert parse(SRT.encode("gbk")) == parse(SRT.encode())


def test_srt_with_bom_and_crlf_is_parsed():
    data = b"\xef\xbb\xbf" + SRT.replace("\n", "\r\n").encode()
    assert parse(data) == parse(SRT.encode())


def test_srt_with_extra_blank_lines_and_no_final_newline_is_parsed():
    data = "\n\n1\n00:00:01,000 --> 00:00:02,000\n甲\n\n  \n\n\n2\n00:00:03,000 --> 00:00:04,000\n乙"
    assert [cue.text for cue in parse(data.encode())] == ["甲", "乙"]


def test_srt_without_blank_line_between_cues_is_parsed():
    data = "1\n00:00:01,000 --> 00:00:02,000\n甲\n2\n00:00:03,000 --> 00:00:04,000\n乙\n"
    assert [cue.text for cue in parse(data.encode())] == ["甲", "乙"]


def test_webvtt_with_settings_notes_and_short_timestamps_is_parsed():
    data = """WEBVTT - 第一课
Kind: captions

NOTE 这是注释
可以有多行

STYLE
::cue { color: yellow }

intro
00:01.000 --> 00:04.000 align:start line:0 position:10%
<v 主持人>大家好</v>

01:00:00.500 --> 01:00:02.000
<i>第二条</i> &amp; 更多
"""
    assert parse(data.encode()) == [
        Cue(1000, 4000, "大家好"),
        Cue(3_600_500, 3_602_000, "第二条 & 更多"),
    ]


def test_tags_are_stripped_and_line_breaks_kept():
    data = '1\n00:00:01,000 --> 00:00:02,000\n{\\an8}<font color="red">红色</font>\n<b>粗体</b>\n'
    assert parse(data.encode())[0].text == "红色\n粗体"


def test_dot_milliseconds_are_accepted_in_srt():
    assert parse(b"1\n00:00:01.250 --> 00:00:02.000\nx\n")[0].start_ms == 1250


def test_to_vtt_round_trips():
    cues = [Cue(1000, 2500, "a < b & c > d"), Cue(3_725_004, 3_726_000, "两行\n文字 --> 箭头")]
    vtt = to_vtt(cues)
    assert vtt.startswith("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\na &lt; b &amp; c &gt; d\n\n")
    assert "01:02:05.004 --> 01:02:06.000\n两行\n文字 --&gt; 箭头\n" in vtt
    assert parse(vtt.encode()) == cues


def test_to_vtt_orders_cues_by_start_time():
    vtt = to_vtt([Cue(5000, 6000, "后"), Cue(1000, 2000, "前")])
    assert vtt.index("前") < vtt.index("后")


@pytest.mark.parametrize(
    "timing",
    [
        "00:00:61,000 --> 00:00:62,000",  # seconds past 59
        "00:61:00,000 --> 00:62:00,000",  # minutes past 59
        "00:00:05,000 --> 00:00:04,000",  # ends before it starts
        "00:00:01 --> 00:00:02",  # no milliseconds
        "00:00:01,000 -> 00:00:02,000",  # not an arrow
        "00:00:01,000 --> soon",
    ],
)
def test_broken_timing_names_the_cue(timing):
    data = (
        f"1\n00:00:01,000 --> 00:00:02,000\n甲\n\n2\n00:00:02,000 --> 00:00:03,000\n乙\n\n3\n{timing}\n丙\n"
    )
    error = rejection(data.encode())
    assert error.code == "timing"
    assert error.message.startswith("第 3 条字幕（第 10 行）的")
    assert timing in error.message


def test_line_that_is_not_a_cue_is_rejected_with_its_line():
    data = "1\n00:00:01,000 --> 00:00:02,000\n甲\n\n这一行不是字幕\n"
    error = rejection(data.encode())
    assert error.code == "format" and "第 2 条字幕（第 5 行）" in error.message


@pytest.mark.parametrize(
    "data", [b"", b"\n\n  \n", b"WEBVTT\n\nNOTE only a note\n"], ids=["empty", "blank", "no-cues"]
)
def test_file_without_cues_is_rejected(data):
    error = rejection(data)
    assert error.code == "empty" and "没有找到任何字幕" in error.message


def test_undecodable_file_is_rejected():
    assert rejection(b"\x81\x20\xff\xfe\x00" * 10).code == "encoding"


def test_too_large_file_is_rejected():
    assert rejection(b"x" * (2 * 1024 * 1024 + 1)).code == "too_large"
