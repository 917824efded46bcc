"""Parsing and masking helpers for what residents type (ID numbers, phones, names, addresses)."""

from __future__ import annotations

import re
import unicodedata

ID_RE = re.compile(r"(?<![0-9A-Za-z])([1-9]\d{16}[\dXx])(?![0-9A-Za-z])")
# A run of 15–20 digits (optionally ending in X) that is not a valid 18-character ID: a hint.
ID_LIKE_RE = re.compile(r"(?<![0-9A-Za-z])(\d{15,20}[Xx]?)(?![0-9A-Za-z])")
PHONE_RE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d[\s-]?\d{4}[\s-]?\d{4})(?!\d)")
PHONE_OK = re.compile(r"1[3-9]\d{9}")
PETITION_RE = re.compile(r"XF[\s\-—_]*(\d{8})[\s\-—_]*(\d{4})", re.IGNORECASE)
NAME_RE = re.compile(r"[\u4e00-\u9fff]{2,4}|[\u4e00-\u9fff]{1,10}[·•][\u4e00-\u9fff]{1,10}")
CJK_RE = re.compile(r"[\u4e00-\u9fff]")
_NAME_PREFIX = re.compile(
    r"^(我叫|我是|俺叫|俺是|咱叫|我姓名是|我的名字是|我的名字叫|本人叫|本人是|本人|名字是|名字叫|名字|姓名是"
    r"|姓名|产权人是|产权人|业主是|业主|户主是|户主|房主是|房主|叫)[:：]?"
)
_ADDRESS_HINT = re.compile(
    r"\d|[一二三四五六七八九十两零〇]+(号|栋|幢|单元|楼|室|层)|号楼|栋|幢|单元|室|小区|花园|苑|山庄|家园"
    r"|公寓|大厦|广场|新村|新城|名都|府|湾|城|里|院|路|街|巷|村"
)
# Words around an ID number and a name in one message ("身份证990…，名字沈凤海").
_ID_NAME_FILLER = re.compile(
    r"身份证号码|身份证号|身份证|证件号|号码|我叫|我是|姓名|名字|产权人|业主|户主|房主|本人|叫|是|的|帮我|"
    r"麻烦|请|查一下|查查|查询|查|一下|看看|房本|房子|我家|号"
)
_DIGITS_CN = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "幺": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
}
_DIGITS_CN.update({"七": 7, "八": 8, "九": 9})
_CN_NUM = "零〇一幺二两三四五六七八九十"
_SEP = r"[\s\-－—_.·。，,、]*"


def normalize(text: str | None) -> str:
    """NFKC (full-width digits and letters to ASCII) and trimmed."""
    return unicodedata.normalize("NFKC", text or "").strip()


def cn_number(value: str) -> int | None:
    """'12', '十二', '二十一', '五零一' → the number; None when it is not one."""
    value = value.strip()
    if value.isdigit():
        return int(value)
    if not value or any(ch not in _CN_NUM for ch in value):
        return None
    if "十" not in value:
        return int("".join(str(_DIGITS_CN[ch]) for ch in value))
    tens, _, ones = value.partition("十")
    high = _DIGITS_CN.get(tens, 1) if tens else 1
    low = _DIGITS_CN.get(ones, 0) if ones else 0
    return high * 10 + low


def digits_of(text: str | None) -> str:
    """The digits typed, Chinese numerals (一三八…) read as digits, everything else dropped."""
    out = []
    for ch in normalize(text):
        if ch.isdigit():
            out.append(ch)
        elif ch in _DIGITS_CN:
            out.append(str(_DIGITS_CN[ch]))
    return "".join(out)


def find_id_number(text: str | None) -> str | None:
    """The first 18-character resident ID number in the text (upper-case X), if any."""
    compact = re.sub(r"(?<=\d)[\s\-]+(?=[\dXx])", "", normalize(text))
    match = ID_RE.search(compact)
    return match.group(1).upper() if match else None


def id_length_problem(text: str | None) -> int | None:
    """The length of a digit run that looks like a mistyped ID (15–20 chars, not 18), else None."""
    compact = re.sub(r"(?<=\d)[\s\-]+(?=[\dXx])", "", normalize(text))
    for match in ID_LIKE_RE.finditer(compact):
        value = match.group(1)
        if len(value) != 18 and not PHONE_OK.fullmatch(value):
            return len(value)
    return None


def valid_id_number(value: str) -> bool:
    """Shape and ISO 7064 check digit of an 18-character resident ID number."""
    value = normalize(value).upper()
    if not re.fullmatch(r"[1-9]\d{16}[\dX]", value):
        return False
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(value[:17], weights, strict=True))
    return "10X98765432"[total % 11] == value[17]


def find_phone(text: str | None) -> str | None:
    """The first mobile number in the text without spaces, dashes or +86, if any."""
    match = PHONE_RE.search(normalize(text))
    return re.sub(r"[\s-]", "", match.group(1)) if match else None


def clean_phone(value: str | None) -> str | None:
    """A valid 11-digit mobile number (1[3-9]…) from what was typed, else None.

    Spaces, dashes, brackets, +86/0086, full-width digits and Chinese numerals are accepted,
    as residents type them ("139 1234 5678", "+86-139…", "一三九一二三四五六七八").
    """
    raw = normalize(value)
    if re.search(r"[A-Za-z]", raw):
        return None
    digits = digits_of(raw)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    elif len(digits) == 15 and digits.startswith("0086"):
        digits = digits[4:]
    return digits if PHONE_OK.fullmatch(digits) else None


def phone_answer(text: str | None) -> tuple[str | None, bool]:
    """(phone, had_digits) for an answer to "your mobile number?"."""
    raw = normalize(text)
    found = find_phone(raw)
    if found:
        return found, True
    digits = digits_of(raw)
    if not digits:
        return None, False
    return clean_phone(raw), True


def name_in_answer(text: str | None) -> str | None:
    """The name in an answer to "your name?" that may say more ("王秀英，俺住观象山庄…")."""
    whole = name_from_text(text)
    if whole:
        return whole
    first = re.split(r"[\s,，。;；、]+", normalize(text))[0] if text else ""
    return name_from_text(first) if first != normalize(text) else None


def digit_run_length(text: str | None) -> int | None:
    """Length of the longest run of digits (an X may end it) in the text, if any."""
    runs = re.findall(r"\d+[Xx]?", re.sub(r"(?<=\d)[\s\-]+(?=[\dXx])", "", normalize(text)))
    return max((len(r) for r in runs), default=None)


def find_petition_number(text: str | None) -> str | None:
    """A petition number XF-YYYYMMDD-NNNN in the text, normalised, if any."""
    match = PETITION_RE.search(normalize(text))
    return f"XF-{match.group(1)}-{match.group(2)}" if match else None


def name_from_text(text: str | None) -> str | None:
    """A Chinese personal name typed on its own ("张三", "我叫李桂兰。"), else None."""
    value = re.sub(r"[\s,，。.!！?？、~～]", "", normalize(text))
    value = _NAME_PREFIX.sub("", value)
    return value if NAME_RE.fullmatch(value) else None


def name_beside_id(text: str | None) -> str | None:
    """The owner's name typed in the same message as an ID number ("沈凤海 9901…"), if any."""
    value = normalize(text)
    value = ID_RE.sub(" ", re.sub(r"(?<=\d)[\s\-]+(?=[\dXx])", "", value))
    value = _ID_NAME_FILLER.sub(" ", value)
    parts = [p for p in re.split(r"[^\u4e00-\u9fff·]+", value) if p]
    names = [p for p in parts if NAME_RE.fullmatch(p)]
    return names[0] if len(names) == 1 else None


def name_beside_phone(text: str | None) -> str | None:
    """The name typed in the same message as a phone ("黄新 158…", "手机…，名字张东金")."""
    value = PHONE_RE.sub(" ", normalize(text))
    value = re.sub(r"手机号码|手机号|手机|电话|号码", " ", value)
    return name_beside_id(value)


_QUESTION = re.compile(
    r"[?？]|吗|呢|么$|啥|什么|怎么|咋|为何|如何|是不是|能不能|要不要|行不行|中不中"
)


def is_question(text: str | None) -> bool:
    """Whether the text reads as a question (a remark in the middle of a form)."""
    return bool(_QUESTION.search(normalize(text)))


_PARTICLES = set("了吗呢吧啊的哦呀哈么啦嘛呗噢喔哎唉诶额呃")


def is_gibberish(text: str | None) -> bool:
    """Particles only ("了吗呢吧啊", "的的的的", "哈哈哈"): no request ("好好好" is a yes)."""
    value = normalize(text)
    if any(ch.isdigit() for ch in value):
        return False  # "111" may be a room number
    chars = [ch for ch in value if has_chinese(ch) or ch.isalpha()]
    if len(chars) < 2:
        return False
    return set(chars) <= _PARTICLES


def looks_like_address(text: str | None) -> bool:
    """True when the text has the marks of an address (numbers, 号楼, 单元, 小区 …)."""
    value = normalize(text)
    return 2 <= len(value) <= 120 and bool(_ADDRESS_HINT.search(value))


def has_chinese(text: str | None) -> bool:
    """Whether the text has at least one Chinese character."""
    return bool(CJK_RE.search(text or ""))


_NUM = rf"(\d+|[{_CN_NUM}]+)"
_BUILDING = re.compile(rf"{_NUM}\s*(?:号楼|号栋|栋|幢|座|号院楼|楼)")
_LETTERED = re.compile(r"(?<![A-Za-z])([A-Za-z])\s*(?:座|栋|幢)")
_UNIT = re.compile(rf"{_NUM}\s*单元")
_ROOM = re.compile(
    rf"(?<![\d.])(\d{{3,4}}|[{_CN_NUM}]{{3,4}})(?![\d.])\s*(?:室|号|户)?(?!\s*(?:年|月|日|元|块|万|次|天|个|多|平|米|岁|届|期))"
)
_DASHED = re.compile(r"(?<!\d)(\d{1,3})\s*[-－—]\s*(\d{1,2})\s*[-－—]\s*(\d{3,4})(?!\d)")


def address_parts(text: str | None) -> dict[str, str]:
    """Building, unit and room found in a fragment ("5号楼", "1单元", "101", "3-2-501")."""
    value = normalize(text)
    parts: dict[str, str] = {}
    dashed = _DASHED.search(value)
    if dashed:
        return {"building": dashed.group(1), "unit": dashed.group(2), "room": dashed.group(3)}
    rest = value
    lettered = _LETTERED.search(rest)
    building = _BUILDING.search(rest)
    if lettered:
        parts["building"] = f"{lettered.group(1).upper()}座"
        rest = rest[: lettered.start()] + " " + rest[lettered.end() :]
    elif building and cn_number(building.group(1)) is not None:
        parts["building"] = str(cn_number(building.group(1)))
        rest = rest[: building.start()] + " " + rest[building.end() :]
    unit = _UNIT.search(rest)
    if unit and cn_number(unit.group(1)) is not None:
        parts["unit"] = str(cn_number(unit.group(1)))
        rest = rest[: unit.start()] + " " + rest[unit.end() :]
    room = _ROOM.search(rest)
    if room:
        raw = room.group(1)
        number = raw if raw.isdigit() else digits_of(raw)
        if number and len(number) >= 3:
            parts["room"] = number
    return parts


def strip_address_parts(text: str | None) -> str:
    """The text without building, unit and room ("观象小区5号楼" → "观象小区")."""
    value = normalize(text)
    value = _DASHED.sub("", value)
    for pattern in (_LETTERED, _BUILDING, _UNIT):
        value = pattern.sub("", value)
    value = _ROOM.sub("", value)
    return value.strip(" ，,。")


_FILLER = re.compile(
    r"不对|不是|应该是|改成|改为|我说错了|说错了|俺住|俺家|那家|这家|那套|这套|那户|俺|我家|我们家|俺家|咱家|家里|我住|住在|住|就是|那个|房子|房本|我家的|地址|是|在|的|了|呢|啊|吧|，|,|。|\s"
)


def project_words(text: str | None) -> str:
    """What is left of an address fragment once building, unit, room and fillers are gone."""
    return _FILLER.sub("", strip_address_parts(text))


def unit_text(parts: dict[str, str]) -> str:
    """'3号楼2单元501' from building, unit and room (those known)."""
    building = str(parts.get("building") or "")
    if building.isdigit():
        label = f"{building}号楼"
    elif len(building) == 1 and building.isalpha():
        label = f"{building.upper()}座"
    else:
        label = building
    label += f"{parts['unit']}单元" if parts.get("unit") else ""
    label += str(parts.get("room") or "")
    return label


_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９ＸｘＫ", "0123456789XxK")


def mask_numbers(text: str) -> str:
    """Mask ID numbers and phones inside free text (e.g. a petition description).

    Only full-width digits are folded: the resident's Chinese punctuation stays as typed.
    """
    text = (text or "").strip().translate(_FULL_WIDTH_DIGITS)
    text = ID_RE.sub(lambda m: "*" * 14 + m.group(1)[-4:], text)
    return PHONE_RE.sub(lambda m: m.group(1)[:3] + "****" + m.group(1)[-4:], text)


def mask_name(name: str | None) -> str:
    """王秀英 → 王**: the surname and one star per other character."""
    value = normalize(name)
    return value[:1] + "*" * (len(value) - 1) if value else ""


def mask_phone(phone: str | None) -> str:
    """13912345678 → 139****5678."""
    value = normalize(phone)
    return value[:3] + "****" + value[-4:] if len(value) == 11 else "***"


def summary(text: str | None, limit: int = 40) -> str:
    """The first `limit` characters of a text as the resident typed it (their Chinese
    punctuation kept), spaces collapsed, with an ellipsis when cut."""
    value = re.sub(r"\s+", " ", (text or "").strip())
    return value if len(value) <= limit else value[: limit - 1] + "…"


# -- the loop: satisfaction, notifications, a person (docs/loop.md) ---------------------------

_UNSATISFIED = re.compile(
    r"不满意|不太满意|不怎么满意|不满|没解决|没有解决|没给解决|不解决|没办好|没办成|不行|不好|太差|很差"
    r"|差劲|没用|不认可|不接受|糊弄|敷衍|不咋样|不怎么样"
)
_BASIC = re.compile(
    r"基本满意|还行|还可以|一般|凑合|马马虎虎|过得去|还算满意|差不多|比较满意|还凑合|将就"
)
_SATISFIED = re.compile(r"满意|很好|挺好|非常好|不错|解决了|办好了|可以了|没问题了|谢谢你们")
# Words of a verdict and filler around it; what is left after them is a reason.
_VERDICT_FILLER = re.compile(
    _UNSATISFIED.pattern
    + "|"
    + _BASIC.pattern
    + r"|满意|我|俺|对|这个|结果|处理|办理|的|很|太|非常|特别|吧|啊|呢|了|呀|嘛|是"
    + r"|说实话|真的|就是"
)
# A verdict is read when it opens the message or the message is this short.
VERDICT_WITHIN = 8
VERDICT_SHORT = 20
SATISFACTION_LABELS = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
}


def satisfaction_of(text: str | None) -> str | None:
    """满意 / 基本满意 / 不满意 (typed or tapped, also 还行, 不行，没解决) → the api's value."""
    value = normalize(text)
    if not value:
        return None
    for pattern, verdict in (
        (_UNSATISFIED, "unsatisfied"),
        (_BASIC, "basically_satisfied"),
        (_SATISFIED, "satisfied"),
    ):
        match = pattern.search(value)
        if match and (match.start() < VERDICT_WITHIN or len(value) <= VERDICT_SHORT):
            return verdict
    return None


def feedback_reason(text: str | None) -> str | None:
    """The reason typed with a verdict ("不满意，答复说了等于没说"); None for a bare verdict."""
    value = normalize(text)
    rest = _VERDICT_FILLER.sub("", value)
    rest = "".join(ch for ch in rest if has_chinese(ch) or ch.isalnum())
    return value if len(rest) >= 2 else None


_NOTIFY_OFF = re.compile(
    r"不用(再)?通知|不要(再)?通知|别(再)?通知|取消通知|关闭通知|关掉通知|退订|不想(再)?收到(通知|消息)"
    r"|别(再)?给我发(消息|通知)|不要(再)?给我发(消息|通知)|别(再)?发(消息|通知)了|不要再发了|别再发了"
)
_NOTIFY_ON = re.compile(r"恢复通知|打开通知|开启通知|重新通知|继续通知|通知我吧|还是通知我")
NOTIFY_CHARS = 24


def notify_command(text: str | None) -> bool | None:
    """False for "不用通知我了" / "别给我发消息了", True for "恢复通知"; None otherwise."""
    value = normalize(text)
    if not value or len(value) > NOTIFY_CHARS:
        return None
    if _NOTIFY_ON.search(value):
        return True
    if _NOTIFY_OFF.search(value):
        return False
    return None


# Asking for a person outright, whatever the NLU made of it ("转人工", "人工客服").
_PERSON = re.compile(
    r"转人工|找人工|要人工|接人工|转接人工|人工客服|人工服务|人工坐席|人工接待|真人客服|找个真人|人工人工"
    r"|^人工$|^找工作人员$|^工作人员$"
)
# "你是人工吗" / "人工智能": a question about the bot, not a request.
_NOT_PERSON = re.compile(r"人工智能|是人工|是不是人工|还是人工|人工吗|是真人|真人吗")
# Words that make a request for a person a petition (信访, 投诉, 反映 …): the form, as before.
_PETITION_WORDS = re.compile(
    r"信访|投诉|上访|举报|登记|反映|立案|立个案|书面|递(个)?材料|实名|写信"
)


def wants_person(text: str | None) -> bool:
    """ "转人工" / "找人工" / "人工客服" typed outright (not "你是人工吗", not a petition)."""
    value = re.sub(r"[\s,，。.!！~～]", "", normalize(text))
    if _NOT_PERSON.search(value) or _PETITION_WORDS.search(value):
        return False
    return bool(_PERSON.search(value))


def wants_petition(text: str | None) -> bool:
    """ "我要信访" / "我要投诉" / "帮我登记": the petition form."""
    return bool(_PETITION_WORDS.search(normalize(text)))
