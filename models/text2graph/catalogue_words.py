"""Curated words of shop descriptions that no table column or packaged word list holds.

The generated ``catalogue_vocabulary`` covers what data can give: garment types (a catalogue's
``product_type_name`` column) and colours (its ``colour_group_name`` column with the XKCD colour
survey's names). Product descriptions also name garment parts, materials, finishes, fits and the
garment again under other nouns ("trainers" for sneakers, "joggers" for trousers); no catalogue
column and no PyPI word list carries those, so they are listed here, read off the H&M article
descriptions (Personalized Fashion Recommendations ``detail_desc``) by kind. Phrases are written
as triples should carry them; matching reads hyphens as spaces.

- GARMENT_NOUNS: garments as descriptions name them;
- PARTS: parts, trims and fastenings (a part directly before another part is read as its style:
  "flap side pockets" -> pockets has-style flap, side);
- MATERIALS: fibres, fabrics and knits;
- FIT / LENGTH / FINISH styles: fit and length words go to ``has-fit`` / ``has-length`` in the
  fine relation set, finishes ("washed", "matt", "padded") to ``has-style``;
- IGNORED_WORDS: words that carry no triple but must not be taken for a misspelt lexicon word or
  for an unknown noun (body parts a garment shapes, measures, counts, filler adjectives);
- GENERIC_NOUNS: nouns that stand for the garment's own make ("reflective details", "a shaping
  effect"): their modifiers go to the garment;
- LOCATION_PARTS: parts that, after "at"/"on"/"in the", only say where something sits ("ribbing
  at the cuffs and hem"), so they give no triple of their own.
"""

from __future__ import annotations

GARMENT_NOUNS: tuple[str, ...] = (
    "bra", "bikini top", "bikini bottoms", "swimsuit", "trunks", "boxers", "briefs", "string briefs", "bikers",
    "tights", "stockings", "stay-ups", "knee highs", "socks", "pyjamas", "all-in-one suit", "sleep bag",
    "dressing gown", "robe", "hairband", "hair claws", "hair clip", "hair elastics", "hair grips", "earrings",
    "sunglasses", "gloves", "umbrella", "beanie", "handbag", "trainers", "joggers", "sweatpants", "treggings",
    "bodywarmer", "crop top", "vest top", "bodysuit", "cardigan", "bottoms",
)
GARMENT_SINGULARS: dict[str, str] = {
    "bras": "bra", "tops": "top", "t-shirts": "t-shirt", "vest tops": "vest top", "crop tops": "crop top",
    "dresses": "dress", "shirts": "shirt", "bodysuits": "bodysuit", "jackets": "jacket", "coats": "coat",
    "sweaters": "sweater", "jumpers": "jumper", "cardigans": "cardigan", "skirts": "skirt", "hats": "hat",
    "caps": "cap", "belts": "belt", "bags": "bag", "scarves": "scarf", "pyjama": "pyjamas",
    "hair clips": "hair clip", "hoodies": "hoodie", "blazers": "blazer", "robes": "robe", "swimsuits": "swimsuit",
}
PARTS: tuple[str, ...] = (
    "hems", "cups", "legs", "leg", "seams", "seam", "gusset", "crotch", "trim", "trims", "ties", "bow", "buckle",
    "fastener", "fasteners", "fastening", "fastenings", "press-stud", "press-studs", "hook-and-eye fastening",
    "hook-and-eye fasteners", "lenses", "frames", "sidepieces", "handles", "compartments", "shaft", "heels",
    "toes", "soles", "insoles", "linings", "lacing", "laces", "loop", "gores", "edges", "edge", "panel", "panels",
    "sections", "slits", "thumbholes", "vent", "buttonhole", "tab", "tabs", "peak", "chin guard", "flap", "fly",
    "button placket", "pompom", "cover", "turn-ups", "turn-up", "ribbing", "shoulder", "side", "feet",
    "knees", "braids", "beads", "tassels", "appliqués", "elastication", "clips", "support panels", "gathers",
    "lace trim", "silicone trim", "reinforcement", "beard", "stitching",
)
LOCATION_PARTS: frozenset[str] = frozenset({
    "waist", "waistband", "hem", "hems", "cuffs", "top", "back", "front", "sides", "side", "crotch", "neck",
    "neckline", "shoulder", "shoulders", "knees", "feet", "toes", "heel", "heels", "chest", "legs", "leg",
    "sleeves", "sleeve", "thumb",
})
MATERIALS: tuple[str, ...] = (
    "microfibre", "cotton blend", "wool blend", "modal blend", "fine-knit", "cable-knit", "textured-knit", "purl-knit", "pointelle-knit", "rib knit", "double knit",
    "jacquard knit", "bouclé knit", "imitation leather", "imitation suede", "faux fur", "velour", "mohair",
    "plastic", "metal", "rubber", "silicone", "functional fabric", "woven fabric", "cotton weave", "slub jersey",
    "flannel", "oxford cotton", "pile", "recycled polyester", "thermal fleece", "softshell", "terry", "tencel",
    "airy jersey", "hole-knit", "functional yarn",
)
FIT_STYLES: tuple[str, ...] = (
    "narrow", "tight fit", "low-rise", "high waist", "superskinny", "straight-cut",
    "tailored", "bell-shaped",
)
LENGTH_STYLES: tuple[str, ...] = (
    "long-sleeved", "short-sleeved", "three-quarter-length", "thigh-high", "over-the-knee", "knee-length",
    "ankle-length",
)
FINISH_STYLES: tuple[str, ...] = (
    "stretch", "superstretch", "washed", "brushed", "matt", "opaque", "semi shiny", "shiny", "semi-matte", "unlined",
    "fully lined", "moulded", "underwired", "lightly padded", "reflective", "breathable", "fast-drying",
    "water-repellent", "windproof", "thermal", "patterned", "adjustable", "detachable", "concealed",
    "decorative", "strapless", "wrapover", "bandeau", "push-up", "shaping", "stand-up", "notch", "shawl",
    "double-layered", "zipped", "buttoned", "jetted", "jersey-lined", "mesh-lined", "cotton-lined", "henley",
    "polo", "bouclé", "hard-worn", "ventilating", "perforated", "scalloped", "flatlock", "overlocked", "picot",
    "laser-cut", "raw-edge", "elastic", "sewn-in", "glittery", "braided", "waterfall", "low-cut", "oxford", "diagonal", "asymmetric", "flock-print", "triangle",
    "seamless", "pleat", "liner", "trainer", "biker", "all-in-one", "uv-protective", "tinted",
    "shaftless", "open", "low", "mid", "single", "racer", "telescopic", "closed", "grained", "twisted", "knitted",
    "fingerless", "bomber", "aviator", "moccasin", "chelsea", "winter", "harem", "cargo", "running", "sports", "outdoor",
)
GENERIC_NOUNS: frozenset[str] = frozenset({
    "details", "detail", "effect", "design", "designs", "finish", "look", "motif", "inside",
})
IGNORED_WORDS: frozenset[str] = frozenset({
    "soft", "fine", "sizes", "size", "months", "years", "denier", "den", "cm", "mm", "width", "length", "approx",
    "one", "two", "three", "four", "five", "pairs", "pair", "various", "colours", "colour", "designs", "tummy",
    "thighs", "bum", "hips", "bust", "calves", "seat", "comfort", "optimum", "extra", "good", "best", "some",
    "content", "recycled", "inside", "outside", "slightly", "gently", "softly", "lightly", "fit", "shape",
    "shapes", "lift", "provide", "help", "keep", "hold", "holds", "while", "also", "have", "has", "be", "them",
    "they", "your", "you", "use", "designed", "containing", "continue", "fasten", "opens", "allowing",
    "includes", "creates", "create", "combined", "search", "matching", "effect", "room", "space", "movement",
    "growing", "larger", "fuller", "cleavage", "sculpting", "support", "threads", "real", "fake", "place",
    "folded", "only", "indoor", "use", "approx", "unique", "feature", "access", "warmth", "easier", "retain",
    "blood", "circulation", "encouraging", "effectively", "regulates", "heat", "maintain", "comfortable",
    "temperature", "silhouette", "movement", "over", "under", "from", "into", "by", "so", "can",
    "be", "together", "hidden", "lift", "sheen", "slight", "dyed", "technical", "keeping", "shaped",
    "gently", "wider", "longer", "shorter", "narrower", "thick", "thin", "sturdy", "supple", "lightweight",
    "integral", "inner", "outer", "key", "earphone", "outlet", "guard", "touchscreen", "compatible", "material",
    "index", "middle", "finger", "thumb", "uppers", "stones", "sparkly", "flowers", "flower", "leaf", "text",
    "nursing", "pads", "opening", "bottom", "hair", "tie", "string", "sleep", "dressing", "peaked", "fastened",
    "padding", "tapers", "layer", "visible", "greater", "built", "rows", "underside", "detailing", "strand",
})
