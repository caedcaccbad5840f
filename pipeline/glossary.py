"""Words shops use for the same thing, mapped to one English form so titles compare across
languages and house styles ("블랙 코튼 티셔츠" ~ "Black Cotton T-Shirt" ~ "Black Cotton Tee").
Extend it for the shops you track."""

from __future__ import annotations

SYNONYMS: dict[str, str] = {
    # colours
    "블랙": "black",
    "화이트": "white",
    "네이비": "navy",
    "그레이": "grey",
    "gray": "grey",
    "베이지": "beige",
    "레드": "red",
    "그린": "green",
    "카키": "khaki",
    "아이보리": "ivory",
    "브라운": "brown",
    # materials
    "코튼": "cotton",
    "면": "cotton",
    "린넨": "linen",
    "울": "wool",
    "데님": "denim",
    "레더": "leather",
    "가죽": "leather",
    "나일론": "nylon",
    "플리스": "fleece",
    "캔버스": "canvas",
    "스웨이드": "suede",
    "니트": "knit",
    # product nouns
    "티셔츠": "tshirt",
    "tee": "tshirt",
    "tees": "tshirt",
    "t": "tshirt",
    "shirt": "shirt",
    "팬츠": "trousers",
    "바지": "trousers",
    "pants": "trousers",
    "스웨터": "pullover",
    "sweater": "pullover",
    "원피스": "dress",
    "코트": "coat",
    "샌들": "sandals",
    "셔츠": "shirt",
    "스니커즈": "sneakers",
    "가방": "bag",
    "앵클부츠": "ankle boots",
    "bts": "boots",
}
# Tokens that say nothing about the product itself.
NOISE = {
    "sale",
    "특가",
    "단독",
    "new",
    "best",
    "hot",
    "free",
    "shipping",
    "무료배송",
    "신상",
    "xs",
    "s",
    "m",
    "l",
    "xl",
    "xxl",
}  # sizes: the same product comes in several
