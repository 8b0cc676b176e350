"""The sample city's areas: Chongqing, its 38 districts and counties, two development zones, ~1,000 streets.

District and county codes and names are the real GB/T 2260 ones; populations are rounded figures from
the 2020 census (in persons). The two national development zones of the "9+2" central urban area
(两江新区, 重庆高新区) have no administrative code: they get the ids 500190 and 500191 and run their own
streets, whose population is carved out of the districts they actually span (渝北, 沙坪坝, 九龙坡), so
populations still add up. Towns and streets are generated: "<district>第N街道" / "<county>第N镇".
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

CITY_ID = "500000"
CENTRAL_URBAN = "central_urban"


@dataclass(frozen=True, slots=True)
class District:
    """One district-level area of the sample city."""

    id: str
    name: str
    name_en: str
    population: int
    county: bool = False  # a county (县) has towns (镇) rather than streets (街道)
    central: bool = False  # in the "9+2" central urban area


#: Real codes and names; populations from the 2020 census, rounded, zones carved out (see module doc).
DISTRICTS: tuple[District, ...] = (
    District("500101", "万州区", "Wanzhou District", 1_656_000),
    District("500102", "涪陵区", "Fuling District", 1_115_000),
    District("500103", "渝中区", "Yuzhong District", 589_000, central=True),
    District("500104", "大渡口区", "Dadukou District", 421_000, central=True),
    District("500105", "江北区", "Jiangbei District", 926_000, central=True),
    District("500106", "沙坪坝区", "Shapingba District", 1_229_000, central=True),
    District("500107", "九龙坡区", "Jiulongpo District", 1_331_000, central=True),
    District("500108", "南岸区", "Nan'an District", 1_196_000, central=True),
    District("500109", "北碚区", "Beibei District", 835_000, central=True),
    District("500110", "綦江区", "Qijiang District", 1_011_000),
    District("500111", "大足区", "Dazu District", 835_000),
    District("500112", "渝北区", "Yubei District", 1_192_000, central=True),
    District("500113", "巴南区", "Banan District", 1_179_000, central=True),
    District("500114", "黔江区", "Qianjiang District", 487_000),
    District("500115", "长寿区", "Changshou District", 693_000),
    District("500116", "江津区", "Jiangjin District", 1_359_000),
    District("500117", "合川区", "Hechuan District", 1_245_000),
    District("500118", "永川区", "Yongchuan District", 1_149_000),
    District("500119", "南川区", "Nanchuan District", 577_000),
    District("500120", "璧山区", "Bishan District", 757_000),
    District("500151", "铜梁区", "Tongliang District", 686_000),
    District("500152", "潼南区", "Tongnan District", 689_000),
    District("500153", "荣昌区", "Rongchang District", 669_000),
    District("500154", "开州区", "Kaizhou District", 1_203_000),
    District("500155", "梁平区", "Liangping District", 646_000),
    District("500156", "武隆区", "Wulong District", 357_000),
    District("500229", "城口县", "Chengkou County", 198_000, county=True),
    District("500230", "丰都县", "Fengdu County", 557_000, county=True),
    District("500231", "垫江县", "Dianjiang County", 650_000, county=True),
    District("500233", "忠县", "Zhong County", 721_000, county=True),
    District("500235", "云阳县", "Yunyang County", 929_000, county=True),
    District("500236", "奉节县", "Fengjie County", 745_000, county=True),
    District("500237", "巫山县", "Wushan County", 463_000, county=True),
    District("500238", "巫溪县", "Wuxi County", 388_000, county=True),
    District("500240", "石柱土家族自治县", "Shizhu Tujia Autonomous County", 389_000, county=True),
    District(
        "500241", "秀山土家族苗族自治县", "Xiushan Tujia and Miao Autonomous County", 486_000, county=True
    ),
    District(
        "500242", "酉阳土家族苗族自治县", "Youyang Tujia and Miao Autonomous County", 608_000, county=True
    ),
    District(
        "500243", "彭水苗族土家族自治县", "Pengshui Miao and Tujia Autonomous County", 494_000, county=True
    ),
    District("500190", "两江新区", "Liangjiang New Area", 1_000_000, central=True),
    District("500191", "重庆高新区", "Chongqing Hi-tech Zone", 450_000, central=True),
)

#: People per generated town/street (Chongqing has about 1,031 towns and streets).
_PEOPLE_PER_STREET = 31_500
_MIN_STREETS = 6


def _unit(*parts: str) -> float:
    """A deterministic number in [0, 1) from the parts (CRC32; stable across runs and platforms)."""
    return zlib.crc32("|".join(parts).encode()) / 2**32


def _short_en(name_en: str) -> str:
    return name_en.split(" ")[0]


def build_areas() -> pl.DataFrame:
    """The sample city's areas as a frame: id, name, name_en, level, parent, population, groups."""
    rows: list[dict[str, object]] = []
    total = sum(d.population for d in DISTRICTS)
    rows.append(
        {
            "id": CITY_ID,
            "name": "重庆市",
            "name_en": "Chongqing",
            "level": "city",
            "parent": None,
            "population": total,
            "groups": "",
        }
    )
    for d in DISTRICTS:
        rows.append(
            {
                "id": d.id,
                "name": d.name,
                "name_en": d.name_en,
                "level": "district",
                "parent": CITY_ID,
                "population": d.population,
                "groups": CENTRAL_URBAN if d.central else "",
            }
        )
    for d in DISTRICTS:
        n = max(_MIN_STREETS, round(d.population / _PEOPLE_PER_STREET))
        weights = [0.4 + _unit(d.id, str(i)) for i in range(n)]
        # urban streets first (bigger), rural towns after
        weights.sort(reverse=True)
        scale = sum(weights)
        pops = [int(d.population * w / scale) for w in weights]
        pops[0] += d.population - sum(pops)
        n_streets = 2 if d.county else max(2, round(n * (0.9 if d.central else 0.35)))
        for i, pop in enumerate(pops, start=1):
            is_street = i <= n_streets
            kind_zh, kind_en = ("街道", "Subdistrict") if is_street else ("镇", "Town")
            rows.append(
                {
                    "id": f"{d.id}{i:03d}",
                    "name": f"{d.name}第{i}{kind_zh}",
                    "name_en": f"{_short_en(d.name_en)} {kind_en} {i}",
                    "level": "street",
                    "parent": d.id,
                    "population": pop,
                    "groups": "",
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "id": pl.String,
            "name": pl.String,
            "name_en": pl.String,
            "level": pl.String,
            "parent": pl.String,
            "population": pl.Int64,
            "groups": pl.String,
        },
        orient="row",
    )


def write_areas(path: Path) -> int:
    """Write the areas CSV (UTF-8) to ``path``; returns the number of areas."""
    frame = build_areas()
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)
    return frame.height
