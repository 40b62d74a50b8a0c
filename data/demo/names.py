"""Chinese names for the demo city, and numbered codes.

Names follow local usage in 牡丹江市西安区 (先锋街道, 光华社区, 西三条路, 西长安街) so that
maps and registers read like the real thing.  Pools are cycled with Chinese ordinals
(光华二社区) when a large city needs more names than a pool holds.  Everything works on
numpy string arrays, so naming 500,000 lamps costs no Python loop per feature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

StrArray = NDArray[np.str_]
IntArray = NDArray[np.int64]

_DIGITS = "零一二三四五六七八九"
_UNITS = ("", "十", "百", "千", "万")

STREET_WORDS = ("先锋", "火炬", "长安", "立新", "牡丹", "江滨", "北山", "西城", "温春", "兴隆")
COMMUNITY_WORDS = (
    "光华", "景福", "兴隆", "新华", "立新", "火炬", "红旗", "园林", "江滨", "向阳",
    "东风", "胜利", "建设", "民主", "友谊", "和平", "长安", "平安", "新安", "海林",
    "牡丹", "温春", "北山", "西山", "南湖", "卧龙", "青梅", "桦林", "朝阳", "富江",
    "曙光", "春晖", "永安", "福民", "祥和", "康乐", "金桥", "银河", "松涛", "丹峰",
)  # fmt: skip
NS_MAIN_WORDS = ("太平", "兴平", "卧龙", "海浪", "铁岭", "江南")
EW_MAIN_WORDS = ("长安", "平安", "新安", "海林")
COMMERCIAL_WORDS = ("兴隆", "新华", "牡丹", "金桥", "紫金", "江南", "福民", "银河")
COMPOUND_WORDS = (
    "阳光", "金色", "幸福", "和谐", "锦绣", "翠竹", "丽景", "龙城", "江南", "富江",
    "紫金", "北方", "世纪", "名都", "书香", "明珠", "温馨", "怡和", "华府", "悦澜",
    "牡丹", "银泰", "康城", "绿洲",
)  # fmt: skip
COMPOUND_SUFFIXES = ("小区", "花园", "家园", "苑", "佳园", "新村", "嘉园", "名苑")
NON_RESIDENTIAL_SUFFIXES = ("大厦", "商务中心", "机关大院", "产业园", "综合市场", "医院")
SURNAMES = (
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高",
    "林", "何", "郭", "马", "罗", "于", "齐", "曲", "姜", "崔", "金", "朴", "孟", "宋", "董",
)  # fmt: skip
GIVEN_NAMES = (
    "丹", "妍爽", "海涛", "桂兰", "淑华", "玉梅", "立新", "志强", "建国", "秀英", "晓东",
    "春燕", "国庆", "丽娟", "红梅", "宏伟", "雪莹", "子涵", "浩然", "思远", "振华", "凤霞",
    "宝山", "德明",
)  # fmt: skip
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
    "155", "157", "158", "159", "176", "177", "180", "181", "186", "187", "188", "189", "199",
)  # fmt: skip
SHOP_WORDS = (
    "极速", "星空", "蓝光", "天翼", "风云", "飞跃", "龙腾", "追梦",
    "鑫源", "福满", "金鼎", "百信", "顺发", "万家", "好运", "宏达",
)  # fmt: skip
VENUE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "internet_cafe": ("网吧", "网咖"),
    "game_hall": ("电子游戏厅", "电玩城"),
    "mahjong_room": ("棋牌室", "麻将馆"),
    "entertainment": ("KTV", "量贩式KTV", "歌舞厅"),
    "tobacco": ("烟酒店", "便利店", "烟草超市"),
    "lottery": ("福利彩票投注站", "体育彩票投注站"),
    "other": ("超市", "饭店", "药店", "理发店", "水果店", "书店"),
}
SCHOOL_PATTERNS: dict[str, tuple[str, str]] = {
    # school type: (prefix before the ordinal, suffix after it)
    "kindergarten": ("西安区第", "幼儿园"),
    "primary": ("牡丹江市第", "小学"),
    "middle": ("牡丹江市第", "中学"),
    "high": ("牡丹江市第", "高级中学"),
    "nine_year": ("牡丹江市第", "九年一贯制学校"),
    "vocational": ("牡丹江市第", "职业中学"),
    "special": ("牡丹江市第", "特殊教育学校"),
}


def cn_number(n: int) -> str:
    """Chinese numeral of 1 <= n < 100000 as written in names: 十, 十六, 一百零五."""
    if not 0 < n < 100_000:
        raise ValueError(f"cannot write {n} as a Chinese ordinal")
    digits = [int(c) for c in str(n)]
    parts: list[str] = []
    pending_zero = False
    for k, d in enumerate(digits):
        if d == 0:
            pending_zero = True
            continue
        if pending_zero and parts:
            parts.append("零")
        pending_zero = False
        parts.append(_DIGITS[d] + _UNITS[len(digits) - 1 - k])
    text = "".join(parts)
    return text[1:] if text.startswith("一十") else text


def cn_numbers(values: IntArray) -> StrArray:
    """Chinese numerals of many numbers (one conversion per distinct value)."""
    unique, inverse = np.unique(np.asarray(values, dtype=np.int64), return_inverse=True)
    table = np.array([cn_number(int(v)) for v in unique], dtype=np.str_)
    out: StrArray = table[inverse.reshape(-1)]
    return out


def join(*parts: StrArray | str) -> StrArray:
    """Element-wise concatenation of string arrays and constants."""
    out: StrArray = np.asarray(parts[0], dtype=np.str_)
    for part in parts[1:]:
        out = np.strings.add(out, np.asarray(part, dtype=np.str_))
    return out


def digits(values: IntArray, width: int) -> StrArray:
    """Zero-padded decimal strings."""
    out: StrArray = np.strings.zfill(np.asarray(values, dtype=np.int64).astype(np.str_), width)
    return out


def numbered(prefix: str, n: int, width: int = 6) -> StrArray:
    """Codes prefix-000001 .. in the importer's style (`{prefix}-{n:06d}`)."""
    return join(f"{prefix}-", digits(np.arange(1, n + 1, dtype=np.int64), width))


def pick(rng: np.random.Generator, pool: Sequence[str], n: int) -> StrArray:
    """n random draws from a pool of words."""
    out: StrArray = np.asarray(pool, dtype=np.str_)[rng.integers(0, len(pool), n)]
    return out


def cycled(pool: Sequence[str], index: IntArray) -> StrArray:
    """Word `index` of a pool, with a Chinese ordinal once the pool is used up (光华二)."""
    index = np.asarray(index, dtype=np.int64)
    base = np.asarray(pool, dtype=np.str_)[index % len(pool)]
    lap = index // len(pool)
    ordinal = np.where(lap > 0, cn_numbers(np.maximum(lap, 0) + 1), "")
    return join(base, ordinal.astype(np.str_))


def person_names(rng: np.random.Generator, n: int) -> StrArray:
    """Plausible full names (surname + given name)."""
    return join(pick(rng, SURNAMES, n), pick(rng, GIVEN_NAMES, n))


def mobile_numbers(rng: np.random.Generator, n: int) -> StrArray:
    """11-digit mainland mobile numbers (1[3-9]x xxxx xxxx)."""
    return join(pick(rng, MOBILE_PREFIXES, n), digits(rng.integers(0, 10**8, n), 8))
