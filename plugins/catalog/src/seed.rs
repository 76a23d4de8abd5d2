//! The demo catalog a fresh install starts with: 8 categories and 181 everyday Indian
//! grocery products with their brands, pack sizes and prices in paise (selling price
//! and MRP roughly as on Indian quick-commerce apps). Loose produce has no brand.
//! Seeded products have no uploaded image: each shows a generated illustration
//! (`images.rs`) until an admin uploads a photo.

/// Where the seed's image URLs used to point (a host that never existed); a migration
/// clears them, and products without an upload show a generated illustration.
pub const OLD_IMAGE_BASE: &str = "https://img.kirana.example/products";

pub struct SeedCategory {
    pub slug: &'static str,
    pub name: &'static str,
}

pub const CATEGORIES: &[SeedCategory] = &[
    SeedCategory {
        slug: "fruits-vegetables",
        name: "Fruits & Vegetables",
    },
    SeedCategory {
        slug: "dairy-bread",
        name: "Dairy & Bread",
    },
    SeedCategory {
        slug: "snacks",
        name: "Snacks",
    },
    SeedCategory {
        slug: "beverages",
        name: "Beverages",
    },
    SeedCategory {
        slug: "staples",
        name: "Staples",
    },
    SeedCategory {
        slug: "household",
        name: "Household",
    },
    SeedCategory {
        slug: "personal-care",
        name: "Personal Care",
    },
    SeedCategory {
        slug: "frozen",
        name: "Frozen",
    },
];

pub struct SeedProduct {
    pub sku: &'static str,
    pub name: &'static str,
    /// The category's slug.
    pub category: &'static str,
    pub brand: Option<&'static str>,
    pub unit: &'static str,
    /// Selling price in paise.
    pub price: i64,
    /// Maximum retail price in paise (≥ price).
    pub mrp: i64,
    pub stock: i64,
    pub description: &'static str,
}

#[allow(clippy::too_many_arguments)]
const fn p(
    sku: &'static str,
    name: &'static str,
    category: &'static str,
    brand: Option<&'static str>,
    unit: &'static str,
    price: i64,
    mrp: i64,
    stock: i64,
    description: &'static str,
) -> SeedProduct {
    SeedProduct {
        sku,
        name,
        category,
        brand,
        unit,
        price,
        mrp,
        stock,
        description,
    }
}

const FV: &str = "fruits-vegetables";
const DB: &str = "dairy-bread";
const SN: &str = "snacks";
const BV: &str = "beverages";
const ST: &str = "staples";
const HH: &str = "household";
const PC: &str = "personal-care";
const FZ: &str = "frozen";

const fn b(brand: &'static str) -> Option<&'static str> {
    Some(brand)
}

#[rustfmt::skip]
pub const PRODUCTS: &[SeedProduct] = &[
    // Fruits & Vegetables
    p("FV-ONION-1KG", "Onion", FV, None, "1 kg", 3900, 4900, 180, "Firm red onions from Nashik, the base of every curry and tadka."),
    p("FV-TOMATO-500G", "Tomato", FV, None, "500 g", 2400, 3000, 160, "Juicy, ripe local tomatoes for curries, chutneys and salads."),
    p("FV-POTATO-1KG", "Potato", FV, None, "1 kg", 3500, 4400, 200, "Everyday potatoes, good for sabzi, parathas and fries."),
    p("FV-GREEN-CHILLI-100G", "Green Chilli", FV, None, "100 g", 1000, 1300, 120, "Fresh, spicy green chillies for tempering and chutneys."),
    p("FV-CORIANDER-100G", "Coriander Leaves", FV, None, "100 g", 1200, 1500, 90, "Fragrant fresh coriander (dhania) for garnishing."),
    p("FV-GINGER-250G", "Ginger", FV, None, "250 g", 3200, 4000, 80, "Fresh ginger root for chai, curries and ginger-garlic paste."),
    p("FV-GARLIC-250G", "Garlic", FV, None, "250 g", 5500, 6900, 75, "Pungent garlic bulbs, hand-picked for size and freshness."),
    p("FV-BHINDI-500G", "Lady Finger (Bhindi)", FV, None, "500 g", 3200, 4000, 60, "Tender okra, ideal for bhindi masala and fry."),
    p("FV-CAULIFLOWER-1PC", "Cauliflower", FV, None, "1 pc (approx. 500 g)", 3500, 4500, 50, "Fresh white cauliflower for aloo gobi and parathas."),
    p("FV-CABBAGE-1PC", "Cabbage", FV, None, "1 pc (approx. 700 g)", 2800, 3500, 55, "Crisp green cabbage for stir-fries, salads and momos."),
    p("FV-CARROT-500G", "Carrot (Orange)", FV, None, "500 g", 3000, 3800, 90, "Sweet orange carrots for salads, halwa and juices."),
    p("FV-CUCUMBER-500G", "Cucumber", FV, None, "500 g", 2200, 2800, 85, "Cool, crunchy cucumbers for raita and salads."),
    p("FV-CAPSICUM-250G", "Capsicum Green", FV, None, "250 g", 2500, 3200, 70, "Glossy green bell peppers for pizzas and stir-fries."),
    p("FV-PALAK-250G", "Spinach (Palak)", FV, None, "250 g", 2000, 2500, 45, "Cleaned fresh spinach leaves for palak paneer and dal."),
    p("FV-LEMON-250G", "Lemon", FV, None, "250 g", 2400, 3000, 100, "Juicy lemons for nimbu pani, dressings and pickles."),
    p("FV-BANANA-6PC", "Banana Robusta", FV, None, "6 pcs", 4200, 5000, 120, "Naturally ripened Robusta bananas, a quick energy snack."),
    p("FV-APPLE-SHIMLA-1KG", "Apple Shimla", FV, None, "1 kg", 17900, 22000, 60, "Crisp, sweet apples from the orchards of Himachal."),
    p("FV-POMEGRANATE-500G", "Pomegranate", FV, None, "500 g", 9900, 12500, 40, "Ruby-red pomegranates with juicy arils."),
    p("FV-PAPAYA-1PC", "Papaya", FV, None, "1 pc (approx. 1 kg)", 5500, 6900, 35, "Ripe papaya, rich in vitamin A and easy on the stomach."),
    p("FV-MOSAMBI-1KG", "Sweet Lime (Mosambi)", FV, None, "1 kg", 8900, 11000, 50, "Juicy mosambi for fresh juice every morning."),
    p("FV-WATERMELON-1PC", "Watermelon", FV, None, "1 pc (approx. 2.5 kg)", 7900, 9900, 25, "Sweet, red watermelon to beat the summer heat."),
    p("FV-GRAPES-500G", "Green Grapes (Seedless)", FV, None, "500 g", 6900, 8500, 40, "Seedless green grapes from Nashik vineyards."),

    // Dairy & Bread
    p("DB-AMUL-TAAZA-500ML", "Amul Taaza Toned Milk", DB, b("Amul"), "500 ml", 2700, 2800, 200, "Pasteurised toned milk with 3% fat, in a handy pouch."),
    p("DB-AMUL-GOLD-500ML", "Amul Gold Full Cream Milk", DB, b("Amul"), "500 ml", 3300, 3400, 180, "Rich full cream milk with 6% fat for thick chai and desserts."),
    p("DB-MD-TONED-500ML", "Mother Dairy Toned Milk", DB, b("Mother Dairy"), "500 ml", 2700, 2800, 150, "Fresh toned milk from Mother Dairy, pasteurised and homogenised."),
    p("DB-NANDINI-TONED-500ML", "Nandini Toned Milk", DB, b("Nandini"), "500 ml", 2200, 2200, 150, "Karnataka's favourite toned milk from KMF Nandini."),
    p("DB-AMUL-BUTTER-100G", "Amul Butter Pasteurised", DB, b("Amul"), "100 g", 5600, 5800, 120, "Utterly butterly delicious salted butter for toast and parathas."),
    p("DB-AMUL-CHEESE-SLICES-200G", "Amul Cheese Slices", DB, b("Amul"), "200 g (10 slices)", 14500, 15000, 70, "Processed cheese slices for sandwiches and burgers."),
    p("DB-AMUL-CHEESE-SPREAD-200G", "Amul Cheese Spread Plain", DB, b("Amul"), "200 g", 10500, 11000, 60, "Creamy cheese spread for sandwiches and snacks."),
    p("DB-AMUL-MASTI-DAHI-400G", "Amul Masti Dahi", DB, b("Amul"), "400 g", 3500, 3500, 100, "Thick, set curd made from pasteurised toned milk."),
    p("DB-MD-CLASSIC-DAHI-400G", "Mother Dairy Classic Dahi", DB, b("Mother Dairy"), "400 g", 3400, 3600, 90, "Smooth, creamy dahi for raita, lassi and meals."),
    p("DB-AMUL-PANEER-200G", "Amul Fresh Paneer", DB, b("Amul"), "200 g", 9000, 9500, 80, "Soft, fresh malai paneer for paneer tikka and curries."),
    p("DB-MILKYMIST-PANEER-200G", "Milky Mist Paneer", DB, b("Milky Mist"), "200 g", 9500, 10500, 60, "Vacuum-packed fresh paneer with a soft, melt-in-mouth texture."),
    p("DB-AMUL-GHEE-1L", "Amul Pure Ghee", DB, b("Amul"), "1 L", 60900, 65000, 40, "Pure cow and buffalo milk ghee with a rich aroma."),
    p("DB-AMUL-KOOL-KESAR-180ML", "Amul Kool Kesar Flavoured Milk", DB, b("Amul"), "180 ml", 2500, 2500, 110, "Chilled saffron-flavoured milk in a bottle."),
    p("DB-AMUL-BUTTERMILK-500ML", "Amul Masti Spiced Buttermilk", DB, b("Amul"), "500 ml", 1700, 1800, 100, "Refreshing chaas spiced with ginger, chilli and curry leaves."),
    p("DB-MD-MISHTI-DOI-100G", "Mother Dairy Mishti Doi", DB, b("Mother Dairy"), "100 g", 2000, 2200, 70, "Sweet Bengali-style set curd, a classic dessert."),
    p("DB-EPIGAMIA-GREEK-BLUEBERRY-90G", "Epigamia Greek Yogurt Blueberry", DB, b("Epigamia"), "90 g", 5000, 6000, 45, "High-protein Greek yogurt with real blueberries."),
    p("DB-EGGOZ-BROWN-6PC", "Eggoz Farm Fresh Brown Eggs", DB, b("Eggoz"), "6 pcs", 7500, 8500, 90, "Protein-rich brown eggs from farms with no antibiotics."),
    p("DB-BRITANNIA-WHEAT-BREAD-450G", "Britannia 100% Whole Wheat Bread", DB, b("Britannia"), "450 g", 5500, 6000, 70, "Soft whole wheat bread, high in fibre."),
    p("DB-HARVESTGOLD-WHITE-BREAD-450G", "Harvest Gold White Bread", DB, b("Harvest Gold"), "450 g", 4500, 4500, 70, "Soft sandwich white bread baked fresh every day."),
    p("DB-MODERN-SANDWICH-BREAD-400G", "Modern Sandwich Bread", DB, b("Modern"), "400 g", 4000, 4500, 60, "Classic white sandwich bread with a fine crumb."),
    p("DB-ENGLISHOVEN-MULTIGRAIN-450G", "English Oven Multigrain Bread", DB, b("English Oven"), "450 g", 6000, 6500, 50, "Multigrain bread with oats, flax and sunflower seeds."),
    p("DB-HARVESTGOLD-PAV-6PC", "Harvest Gold Pav", DB, b("Harvest Gold"), "6 pcs", 3000, 3000, 80, "Soft ladi pav for pav bhaji and vada pav."),

    // Snacks
    p("SN-HALDIRAMS-ALOO-BHUJIA-200G", "Haldiram's Aloo Bhujia", SN, b("Haldiram's"), "200 g", 5200, 5500, 150, "Crispy potato and gram flour sev with a tangy masala."),
    p("SN-HALDIRAMS-MOONG-DAL-200G", "Haldiram's Moong Dal", SN, b("Haldiram's"), "200 g", 5200, 5500, 120, "Fried salted moong dal, a light crunchy namkeen."),
    p("SN-HALDIRAMS-BHUJIA-SEV-400G", "Haldiram's Bhujia Sev", SN, b("Haldiram's"), "400 g", 10500, 11500, 90, "Classic Bikaneri-style bhujia made with moth dal."),
    p("SN-HALDIRAMS-KHATTA-MEETHA-400G", "Haldiram's Khatta Meetha", SN, b("Haldiram's"), "400 g", 10000, 11000, 80, "Sweet and tangy mixture of sev, peanuts and raisins."),
    p("SN-LAYS-MAGIC-MASALA-52G", "Lay's India's Magic Masala Chips", SN, b("Lay's"), "52 g", 2000, 2000, 200, "Potato chips with India's favourite spicy masala."),
    p("SN-LAYS-CLASSIC-SALTED-52G", "Lay's Classic Salted Chips", SN, b("Lay's"), "52 g", 2000, 2000, 180, "Thin, crispy potato chips with just the right salt."),
    p("SN-KURKURE-MASALA-MUNCH-90G", "Kurkure Masala Munch", SN, b("Kurkure"), "90 g", 2000, 2000, 180, "Crunchy corn puffs with a chatpata masala."),
    p("SN-BINGO-MAD-ANGLES-66G", "Bingo Mad Angles Achaari Masti", SN, b("Bingo"), "66 g", 2000, 2000, 140, "Triangle chips with a tangy achaari flavour."),
    p("SN-UNCLE-CHIPPS-SPICY-55G", "Uncle Chipps Spicy Treat", SN, b("Uncle Chipps"), "55 g", 2000, 2000, 120, "Thick-cut potato chips with a spicy seasoning."),
    p("SN-TOO-YUMM-MULTIGRAIN-54G", "Too Yumm! Multigrain Chips", SN, b("Too Yumm!"), "54 g", 2000, 2000, 100, "Baked multigrain chips, lower in fat."),
    p("SN-PARLEG-GLUCO-250G", "Parle-G Original Gluco Biscuits", SN, b("Parle"), "250 g", 2500, 2500, 200, "India's favourite glucose biscuits, perfect with chai."),
    p("SN-PARLEG-GLUCO-800G", "Parle-G Original Gluco Biscuits Family Pack", SN, b("Parle"), "800 g", 8500, 9000, 100, "The family pack of the classic Parle-G glucose biscuits."),
    p("SN-PARLE-MONACO-200G", "Parle Monaco Classic Salted Crackers", SN, b("Parle"), "200 g", 3500, 4000, 90, "Light, crispy salted crackers for tea-time toppings."),
    p("SN-PARLE-HIDESEEK-200G", "Parle Hide & Seek Chocolate Chip Cookies", SN, b("Parle"), "200 g", 5000, 5500, 90, "Crunchy cookies loaded with chocolate chips."),
    p("SN-BRITANNIA-GOODDAY-CASHEW-200G", "Britannia Good Day Cashew Cookies", SN, b("Britannia"), "200 g", 4000, 4500, 110, "Buttery cookies studded with cashew bits."),
    p("SN-BRITANNIA-MARIE-GOLD-250G", "Britannia Marie Gold Biscuits", SN, b("Britannia"), "250 g", 3500, 4000, 120, "Light, crisp tea-time biscuits."),
    p("SN-BRITANNIA-BOURBON-150G", "Britannia Bourbon Chocolate Cream Biscuits", SN, b("Britannia"), "150 g", 3500, 3500, 100, "Chocolate biscuits with a rich chocolate cream filling."),
    p("SN-BRITANNIA-DIGESTIVE-250G", "Britannia NutriChoice Digestive Biscuits", SN, b("Britannia"), "250 g", 4800, 5000, 80, "High-fibre whole wheat digestive biscuits."),
    p("SN-SUNFEAST-DARK-FANTASY-300G", "Sunfeast Dark Fantasy Choco Fills", SN, b("Sunfeast"), "300 g", 16000, 17000, 60, "Cookies with a molten chocolate centre."),
    p("SN-OREO-VANILLA-120G", "Oreo Vanilla Creme Biscuits", SN, b("Oreo"), "120 g", 3500, 3500, 100, "Chocolate sandwich biscuits with vanilla creme."),
    p("SN-CADBURY-DAIRY-MILK-50G", "Cadbury Dairy Milk Chocolate", SN, b("Cadbury"), "50 g", 4500, 5000, 150, "Smooth, creamy milk chocolate bar."),
    p("SN-CADBURY-SILK-60G", "Cadbury Dairy Milk Silk", SN, b("Cadbury"), "60 g", 8000, 8000, 90, "Extra smooth and rich milk chocolate."),
    p("SN-KITKAT-4F-37G", "Nestle KitKat 4 Finger", SN, b("Nestle"), "37.3 g", 3500, 4000, 120, "Crispy wafer fingers covered in milk chocolate."),
    p("SN-ACTII-POPCORN-SALTED-70G", "Act II Instant Popcorn Classic Salted", SN, b("Act II"), "70 g", 3000, 3000, 80, "Microwave popcorn ready in three minutes."),

    // Beverages
    p("BV-TATA-TEA-PREMIUM-500G", "Tata Tea Premium", BV, b("Tata Tea"), "500 g", 28000, 31000, 90, "A strong blend of Assam CTC tea for the perfect desi chai."),
    p("BV-TATA-TEA-GOLD-250G", "Tata Tea Gold", BV, b("Tata Tea"), "250 g", 15000, 16500, 80, "Assam CTC with 15% long leaves for rich taste and aroma."),
    p("BV-RED-LABEL-500G", "Brooke Bond Red Label Tea", BV, b("Brooke Bond"), "500 g", 27500, 29000, 90, "A natural care blend with ginger, tulsi and ashwagandha notes."),
    p("BV-TAJ-MAHAL-250G", "Taj Mahal Tea", BV, b("Brooke Bond"), "250 g", 19000, 21000, 60, "Fine Assam tea with a rich, refreshing taste."),
    p("BV-LIPTON-GREEN-HONEY-25B", "Lipton Green Tea Honey Lemon", BV, b("Lipton"), "25 tea bags", 16500, 18000, 50, "Green tea bags with a hint of honey and lemon."),
    p("BV-NESCAFE-CLASSIC-50G", "Nescafe Classic Instant Coffee", BV, b("Nescafe"), "50 g", 17000, 18500, 80, "100% pure instant coffee with a rich aroma."),
    p("BV-BRU-INSTANT-100G", "Bru Instant Coffee", BV, b("Bru"), "100 g", 19500, 22000, 70, "Coffee-chicory blend for a frothy South Indian-style cup."),
    p("BV-COCA-COLA-750ML", "Coca-Cola", BV, b("Coca-Cola"), "750 ml", 4000, 4000, 150, "Refreshing carbonated soft drink, best served chilled."),
    p("BV-THUMS-UP-750ML", "Thums Up", BV, b("Thums Up"), "750 ml", 4000, 4000, 150, "Strong, fizzy cola with a bold taste."),
    p("BV-SPRITE-750ML", "Sprite", BV, b("Sprite"), "750 ml", 4000, 4000, 130, "Clear lemon-lime flavoured soft drink."),
    p("BV-PEPSI-2-25L", "Pepsi", BV, b("Pepsi"), "2.25 L", 9500, 10000, 70, "Party-size bottle of Pepsi cola."),
    p("BV-MAAZA-600ML", "Maaza Mango Drink", BV, b("Maaza"), "600 ml", 4200, 4200, 120, "Thick mango drink made from Alphonso and Totapuri mangoes."),
    p("BV-FROOTI-1-2L", "Frooti Mango Drink", BV, b("Frooti"), "1.2 L", 7000, 7500, 80, "Fresh and juicy mango drink."),
    p("BV-REAL-MIXED-FRUIT-1L", "Real Fruit Power Mixed Fruit Juice", BV, b("Real"), "1 L", 11000, 13000, 60, "A blend of nine fruits with no added preservatives."),
    p("BV-TROPICANA-ORANGE-1L", "Tropicana 100% Orange Juice", BV, b("Tropicana"), "1 L", 12500, 14500, 55, "100% orange juice with no added sugar."),
    p("BV-PAPERBOAT-AAM-PANNA-250ML", "Paper Boat Aam Panna", BV, b("Paper Boat"), "250 ml", 3000, 3000, 70, "Tangy raw mango drink with roasted cumin and mint."),
    p("BV-BISLERI-1L", "Bisleri Packaged Drinking Water", BV, b("Bisleri"), "1 L", 2000, 2000, 200, "Safe, purified drinking water with added minerals."),
    p("BV-KINLEY-2L", "Kinley Packaged Drinking Water", BV, b("Kinley"), "2 L", 3000, 3000, 150, "Purified drinking water with added minerals for taste."),
    p("BV-REDBULL-250ML", "Red Bull Energy Drink", BV, b("Red Bull"), "250 ml", 12500, 12500, 80, "Energy drink that vitalises body and mind."),
    p("BV-STING-250ML", "Sting Energy Drink Berry Blast", BV, b("Sting"), "250 ml", 2000, 2000, 120, "Berry-flavoured energy drink with a kick."),
    p("BV-BOURNVITA-500G", "Cadbury Bournvita Health Drink", BV, b("Cadbury"), "500 g", 24500, 26000, 60, "Chocolate malt drink with vitamins for growing kids."),
    p("BV-HORLICKS-CLASSIC-500G", "Horlicks Classic Malt", BV, b("Horlicks"), "500 g", 25000, 27000, 55, "Malted health drink with 23 vital nutrients."),
    p("BV-GLUCOND-ORIGINAL-500G", "Glucon-D Original", BV, b("Glucon-D"), "500 g", 16000, 17000, 50, "Instant glucose drink powder for quick energy."),

    // Staples
    p("ST-AASHIRVAAD-ATTA-5KG", "Aashirvaad Shudh Chakki Atta", ST, b("Aashirvaad"), "5 kg", 26500, 30000, 100, "Whole wheat flour, chakki-ground for soft rotis."),
    p("ST-AASHIRVAAD-ATTA-10KG", "Aashirvaad Shudh Chakki Atta", ST, b("Aashirvaad"), "10 kg", 50500, 58000, 50, "Value pack of chakki-ground whole wheat flour."),
    p("ST-TATA-SALT-1KG", "Tata Salt", ST, b("Tata"), "1 kg", 2800, 2800, 200, "Vacuum-evaporated iodised salt, desh ka namak."),
    p("ST-FORTUNE-SUNFLOWER-1L", "Fortune Sunflower Oil", ST, b("Fortune"), "1 L", 15500, 18500, 120, "Light, refined sunflower oil for everyday cooking."),
    p("ST-FORTUNE-MUSTARD-1L", "Fortune Kachi Ghani Mustard Oil", ST, b("Fortune"), "1 L", 16500, 19500, 90, "Cold-pressed mustard oil with a strong pungent aroma."),
    p("ST-SAFFOLA-GOLD-1L", "Saffola Gold Edible Oil", ST, b("Saffola"), "1 L", 19500, 22500, 70, "Blend of rice bran and sunflower oil, good for the heart."),
    p("ST-INDIAGATE-BASMATI-1KG", "India Gate Basmati Rice Classic", ST, b("India Gate"), "1 kg", 19900, 23000, 80, "Aged long-grain basmati rice for biryani and pulao."),
    p("ST-DAAWAT-ROZANA-5KG", "Daawat Rozana Super Basmati Rice", ST, b("Daawat"), "5 kg", 44900, 56000, 40, "Everyday basmati rice with long, fluffy grains."),
    p("ST-24MANTRA-SONAMASOORI-5KG", "24 Mantra Organic Sona Masoori Rice", ST, b("24 Mantra"), "5 kg", 47500, 52000, 30, "Organic, lightweight Sona Masoori rice for daily meals."),
    p("ST-TATA-SAMPANN-TOOR-1KG", "Tata Sampann Unpolished Toor Dal", ST, b("Tata Sampann"), "1 kg", 18500, 21000, 100, "Unpolished arhar dal that keeps its natural goodness."),
    p("ST-TATA-SAMPANN-CHANA-1KG", "Tata Sampann Unpolished Chana Dal", ST, b("Tata Sampann"), "1 kg", 12500, 14000, 80, "Protein-rich unpolished chana dal."),
    p("ST-TATA-SAMPANN-MOONG-500G", "Tata Sampann Unpolished Moong Dal", ST, b("Tata Sampann"), "500 g", 9000, 10000, 80, "Split yellow moong dal, light and easy to digest."),
    p("ST-TATA-SAMPANN-MASOOR-1KG", "Tata Sampann Masoor Dal (Malka)", ST, b("Tata Sampann"), "1 kg", 12000, 13500, 70, "Red lentils that cook quickly into a creamy dal."),
    p("ST-FORTUNE-BESAN-500G", "Fortune Besan", ST, b("Fortune"), "500 g", 6500, 7500, 90, "Fine gram flour for pakoras, kadhi and ladoos."),
    p("ST-MADHUR-SUGAR-1KG", "Madhur Pure Sugar", ST, b("Madhur"), "1 kg", 5200, 6000, 150, "Sulphur-free refined sugar with fine crystals."),
    p("ST-EVEREST-TURMERIC-100G", "Everest Turmeric Powder", ST, b("Everest"), "100 g", 3500, 3800, 120, "Bright yellow haldi powder for colour and flavour."),
    p("ST-MDH-DEGGI-MIRCH-100G", "MDH Deggi Mirch", ST, b("MDH"), "100 g", 8800, 9200, 90, "Kashmiri-style chilli powder for a rich red colour."),
    p("ST-EVEREST-GARAM-MASALA-100G", "Everest Garam Masala", ST, b("Everest"), "100 g", 9000, 9500, 90, "Aromatic blend of whole spices for North Indian dishes."),
    p("ST-CATCH-JEERA-100G", "Catch Cumin Seeds (Jeera)", ST, b("Catch"), "100 g", 6000, 7000, 80, "Whole cumin seeds for tadka and jeera rice."),
    p("ST-MAGGI-MASALA-280G", "Maggi 2-Minute Masala Noodles", ST, b("Maggi"), "280 g (4 x 70 g)", 5600, 5600, 180, "India's favourite instant noodles with the classic masala tastemaker."),
    p("ST-YIPPEE-MAGIC-MASALA-280G", "Sunfeast Yippee! Magic Masala Noodles", ST, b("Sunfeast"), "280 g (4 x 70 g)", 5400, 5600, 120, "Long, non-sticky instant noodles with magic masala."),
    p("ST-KELLOGGS-CORNFLAKES-475G", "Kellogg's Corn Flakes Original", ST, b("Kellogg's"), "475 g", 19000, 21000, 50, "Crispy golden corn flakes for a quick breakfast."),
    p("ST-QUAKER-OATS-1KG", "Quaker Oats", ST, b("Quaker"), "1 kg", 19500, 21500, 60, "100% wholegrain rolled oats, rich in fibre."),
    p("ST-RAJDHANI-POHA-500G", "Rajdhani Poha (Thick)", ST, b("Rajdhani"), "500 g", 4500, 5000, 70, "Thick flattened rice for kanda poha breakfasts."),
    p("ST-KISSAN-JAM-500G", "Kissan Mixed Fruit Jam", ST, b("Kissan"), "500 g", 17000, 19000, 50, "Jam made with real fruits, loved on bread and rotis."),
    p("ST-KISSAN-KETCHUP-850G", "Kissan Fresh Tomato Ketchup", ST, b("Kissan"), "850 g", 12000, 14000, 60, "Tomato ketchup made with 100% real tomatoes."),

    // Household
    p("HH-SURF-EXCEL-EASYWASH-1KG", "Surf Excel Easy Wash Detergent Powder", HH, b("Surf Excel"), "1 kg", 13500, 14500, 90, "Removes tough stains easily in bucket and hand wash."),
    p("HH-SURF-EXCEL-MATIC-TL-1L", "Surf Excel Matic Top Load Liquid Detergent", HH, b("Surf Excel"), "1 L", 23500, 26000, 60, "Liquid detergent made for top-load washing machines."),
    p("HH-ARIEL-MATIC-FL-1KG", "Ariel Matic Front Load Detergent Powder", HH, b("Ariel"), "1 kg", 30000, 33500, 50, "Low-foam powder for brilliant cleaning in front-load machines."),
    p("HH-TIDE-PLUS-JASMINE-1KG", "Tide Plus Double Power Jasmine & Rose", HH, b("Tide"), "1 kg", 11500, 12500, 80, "Detergent powder with a jasmine and rose fragrance."),
    p("HH-RIN-BAR-250G", "Rin Detergent Bar", HH, b("Rin"), "250 g", 2200, 2500, 120, "Detergent bar for brilliant white clothes."),
    p("HH-COMFORT-MORNING-FRESH-860ML", "Comfort After Wash Fabric Conditioner Morning Fresh", HH, b("Comfort"), "860 ml", 22000, 24000, 40, "Fabric conditioner for soft, fragrant clothes."),
    p("HH-VIM-BAR-300G", "Vim Dishwash Bar", HH, b("Vim"), "300 g", 3000, 3000, 150, "Lemon-powered dishwash bar that cuts grease fast."),
    p("HH-VIM-GEL-750ML", "Vim Dishwash Liquid Gel Lemon", HH, b("Vim"), "750 ml", 17500, 19900, 70, "Concentrated dishwash gel with the power of lemons."),
    p("HH-PRIL-LIQUID-425ML", "Pril Dishwash Liquid Lime", HH, b("Pril"), "425 ml", 10500, 11500, 60, "Grease-cutting dishwash liquid with lime."),
    p("HH-EXO-BAR-500G", "Exo Touch & Shine Dishwash Bar", HH, b("Exo"), "500 g", 4500, 5000, 70, "Dishwash bar with anti-bacterial ingredients."),
    p("HH-HARPIC-POWERPLUS-1L", "Harpic Power Plus Toilet Cleaner Original", HH, b("Harpic"), "1 L", 21500, 23500, 60, "Thick liquid toilet cleaner that kills 99.9% of germs."),
    p("HH-LIZOL-CITRUS-975ML", "Lizol Disinfectant Surface Cleaner Citrus", HH, b("Lizol"), "975 ml", 21000, 23500, 60, "Floor cleaner that kills 99.9% of germs, with a citrus fragrance."),
    p("HH-COLIN-GLASS-500ML", "Colin Glass and Surface Cleaner", HH, b("Colin"), "500 ml", 11000, 12500, 45, "Streak-free shine for glass and household surfaces."),
    p("HH-DETTOL-ANTISEPTIC-550ML", "Dettol Antiseptic Liquid", HH, b("Dettol"), "550 ml", 21500, 23000, 60, "Antiseptic disinfectant liquid for first aid, bathing and cleaning."),
    p("HH-GOODKNIGHT-GOLD-FLASH-45ML", "Good Knight Gold Flash Liquid Vapouriser Refill", HH, b("Good Knight"), "45 ml", 8500, 9500, 80, "Mosquito repellent refill with a flash mode."),
    p("HH-ALLOUT-ULTRA-45ML", "All Out Ultra Refill", HH, b("All Out"), "45 ml", 8000, 9000, 80, "Liquid mosquito repellent refill for 45 nights."),
    p("HH-HIT-CRAWLING-200ML", "HIT Cockroach Killer Spray", HH, b("HIT"), "200 ml", 20000, 22000, 40, "Kills cockroaches and crawling insects fast."),
    p("HH-SCOTCHBRITE-SCRUB-3PC", "Scotch-Brite Scrub Pad", HH, b("Scotch-Brite"), "3 pcs", 5000, 5500, 90, "Tough scrub pads for utensils and kitchen surfaces."),
    p("HH-ODONIL-BLOCKS-50G", "Odonil Bathroom Air Freshener Blocks", HH, b("Odonil"), "50 g", 5500, 6000, 60, "Long-lasting fragrance blocks for bathrooms."),
    p("HH-ORIGAMI-KITCHEN-TOWEL-2R", "Origami So Soft Kitchen Towel", HH, b("Origami"), "2 rolls", 18000, 20000, 40, "Absorbent 2-ply kitchen towels."),
    p("HH-EZEE-GARBAGE-BAGS-M-30", "Ezee Garbage Bags Medium", HH, b("Ezee"), "30 bags", 9500, 11000, 70, "Leak-proof medium garbage bags, 19 x 21 inches."),
    p("HH-EVEREADY-AA-4PC", "Eveready Ultima Alkaline AA Batteries", HH, b("Eveready"), "4 pcs", 12000, 13000, 50, "Long-lasting alkaline batteries for remotes and toys."),

    // Personal Care
    p("PC-DETTOL-SOAP-ORIGINAL-4X75G", "Dettol Original Germ Protection Soap", PC, b("Dettol"), "4 x 75 g", 18000, 20000, 80, "Bathing soap with germ protection for the whole family."),
    p("PC-LIFEBUOY-TOTAL10-4X100G", "Lifebuoy Total 10 Soap", PC, b("Lifebuoy"), "4 x 100 g", 12500, 14000, 90, "Germ protection soap with activ silver formula."),
    p("PC-LUX-SOFT-ROSE-3X100G", "Lux Soft Rose Soap", PC, b("Lux"), "3 x 100 g", 11500, 12500, 80, "Beauty soap with French rose and almond oil."),
    p("PC-DOVE-CREAM-BAR-100G", "Dove Cream Beauty Bathing Bar", PC, b("Dove"), "100 g", 6500, 7000, 90, "Moisturising bar with 1/4 moisturising cream."),
    p("PC-SANTOOR-SANDAL-4X100G", "Santoor Sandal & Turmeric Soap", PC, b("Santoor"), "4 x 100 g", 15000, 16800, 70, "Soap with sandalwood and turmeric for younger-looking skin."),
    p("PC-DETTOL-HANDWASH-REFILL-675ML", "Dettol Original Liquid Handwash Refill", PC, b("Dettol"), "675 ml", 9900, 11900, 70, "Germ protection handwash in an economical refill pack."),
    p("PC-COLGATE-STRONG-TEETH-200G", "Colgate Strong Teeth Toothpaste", PC, b("Colgate"), "200 g", 12000, 13600, 100, "Calcium-boost toothpaste for strong teeth."),
    p("PC-PEPSODENT-GERMICHECK-150G", "Pepsodent Germicheck Toothpaste", PC, b("Pepsodent"), "150 g", 9500, 10500, 80, "Toothpaste that fights germs for 12 hours."),
    p("PC-CLOSEUP-RED-HOT-150G", "Closeup Red Hot Gel Toothpaste", PC, b("Closeup"), "150 g", 11000, 12000, 70, "Fresh-breath gel toothpaste with a red hot flavour."),
    p("PC-SENSODYNE-FRESH-MINT-70G", "Sensodyne Fresh Mint Toothpaste", PC, b("Sensodyne"), "70 g", 14500, 15500, 50, "Toothpaste for sensitive teeth with lasting relief."),
    p("PC-COLGATE-ZIGZAG-3PC", "Colgate ZigZag Toothbrush Medium", PC, b("Colgate"), "3 pcs", 9900, 11000, 60, "Toothbrushes with zigzag bristles for deep cleaning."),
    p("PC-CLINIC-PLUS-340ML", "Clinic Plus Strong & Long Shampoo", PC, b("Clinic Plus"), "340 ml", 18000, 20000, 60, "Milk-protein shampoo for strong, long hair."),
    p("PC-HEAD-SHOULDERS-MENTHOL-180ML", "Head & Shoulders Anti Dandruff Shampoo Cool Menthol", PC, b("Head & Shoulders"), "180 ml", 19000, 21000, 50, "Anti-dandruff shampoo with a cooling menthol feel."),
    p("PC-DOVE-INTENSE-REPAIR-340ML", "Dove Intense Repair Shampoo", PC, b("Dove"), "340 ml", 32000, 36000, 40, "Shampoo that repairs damaged hair and reduces breakage."),
    p("PC-PARACHUTE-COCONUT-500ML", "Parachute Pure Coconut Oil", PC, b("Parachute"), "500 ml", 21000, 23000, 70, "100% pure coconut oil for hair and skin."),
    p("PC-DABUR-AMLA-275ML", "Dabur Amla Hair Oil", PC, b("Dabur"), "275 ml", 13500, 15000, 60, "Amla-enriched hair oil for strong, dark hair."),
    p("PC-NIVEA-SOFT-100ML", "Nivea Soft Light Moisturising Cream", PC, b("Nivea"), "100 ml", 22000, 24000, 50, "Light, non-greasy cream with vitamin E and jojoba oil."),
    p("PC-VASELINE-DEEP-RESTORE-400ML", "Vaseline Intensive Care Deep Restore Body Lotion", PC, b("Vaseline"), "400 ml", 37500, 42500, 35, "Body lotion that restores dry skin with glycerine."),
    p("PC-HIMALAYA-NEEM-FACEWASH-150ML", "Himalaya Purifying Neem Face Wash", PC, b("Himalaya"), "150 ml", 19000, 21000, 60, "Soap-free herbal face wash with neem and turmeric."),
    p("PC-GILLETTE-GUARD-1PC", "Gillette Guard Razor", PC, b("Gillette"), "1 pc", 3500, 3500, 70, "Safety razor with a single blade and comfort guard."),
    p("PC-WHISPER-CHOICE-XL-20", "Whisper Choice Ultra Sanitary Pads XL", PC, b("Whisper"), "20 pads", 13000, 14500, 50, "Ultra-thin XL pads with wings for all-day protection."),
    p("PC-DETTOL-SANITIZER-200ML", "Dettol Instant Hand Sanitizer Original", PC, b("Dettol"), "200 ml", 10000, 10000, 60, "Alcohol-based hand sanitizer that kills 99.9% of germs."),

    // Frozen
    p("FZ-MCCAIN-FRIES-420G", "McCain French Fries", FZ, b("McCain"), "420 g", 11000, 12500, 60, "Crispy golden fries, ready in minutes from frozen."),
    p("FZ-MCCAIN-SMILES-415G", "McCain Smiles", FZ, b("McCain"), "415 g", 13500, 15000, 50, "Smiley-shaped potato bites that kids love."),
    p("FZ-MCCAIN-ALOO-TIKKI-400G", "McCain Aloo Tikki", FZ, b("McCain"), "400 g", 11000, 12000, 50, "Spiced potato patties for chaat and burgers."),
    p("FZ-SAFAL-PEAS-500G", "Safal Frozen Green Peas", FZ, b("Safal"), "500 g", 10000, 11500, 70, "Farm-fresh green peas, frozen within hours of harvest."),
    p("FZ-SAFAL-CORN-500G", "Safal Frozen Sweet Corn", FZ, b("Safal"), "500 g", 12000, 13000, 60, "Sweet corn kernels for soups, salads and chaat."),
    p("FZ-SAFAL-MIXED-VEG-500G", "Safal Frozen Mixed Vegetables", FZ, b("Safal"), "500 g", 11000, 12000, 50, "Peas, carrots, beans and corn, cut and ready to cook."),
    p("FZ-ITC-VEG-NUGGETS-400G", "ITC Master Chef Crispy Veg Nuggets", FZ, b("ITC Master Chef"), "400 g", 17500, 19000, 40, "Crunchy vegetable nuggets, ready to fry."),
    p("FZ-YUMMIEZ-CHICKEN-NUGGETS-400G", "Godrej Yummiez Chicken Nuggets", FZ, b("Godrej Yummiez"), "400 g", 22500, 25000, 40, "Juicy chicken nuggets with a crispy coating."),
    p("FZ-VENKYS-CHICKEN-SAUSAGE-500G", "Venky's Chicken Sausages", FZ, b("Venky's"), "500 g", 24000, 26500, 30, "Ready-to-cook chicken sausages for breakfast."),
    p("FZ-PRASUMA-CHICKEN-MOMOS-10PC", "Prasuma Chicken Momos", FZ, b("Prasuma"), "10 pcs", 19500, 22000, 40, "Himalayan-style steamed chicken momos."),
    p("FZ-HALDIRAMS-ALOO-PARATHA-400G", "Haldiram's Frozen Aloo Paratha", FZ, b("Haldiram's"), "400 g (4 pcs)", 11000, 12000, 45, "Flaky parathas stuffed with spiced potato."),
    p("FZ-IDFRESH-MALABAR-PAROTA-5PC", "iD Malabar Parota", FZ, b("iD"), "5 pcs", 7500, 8000, 50, "Layered Kerala-style parotas, heat and eat."),
    p("FZ-AMUL-VANILLA-MAGIC-1L", "Amul Vanilla Magic Ice Cream", FZ, b("Amul"), "1 L", 18500, 20000, 40, "Creamy vanilla ice cream made with real milk."),
    p("FZ-AMUL-TRICONE-BUTTERSCOTCH-120ML", "Amul Tricone Butterscotch", FZ, b("Amul"), "120 ml", 4000, 4000, 80, "Butterscotch ice cream cone with crunchy nuts."),
    p("FZ-KWALITY-CORNETTO-DOUBLE-CHOC-105ML", "Kwality Wall's Cornetto Double Chocolate", FZ, b("Kwality Wall's"), "105 ml", 4000, 4000, 80, "Chocolate cone with a chocolate tip."),
    p("FZ-KWALITY-FEAST-CHOC-70ML", "Kwality Wall's Feast Chocolate Stick", FZ, b("Kwality Wall's"), "70 ml", 3000, 3000, 80, "Chocolate-coated ice cream stick with a chocolate core."),
    p("FZ-HAVMOR-CHOCO-CHIPS-1L", "Havmor Chocolate Chips Ice Cream", FZ, b("Havmor"), "1 L", 25000, 27500, 30, "Chocolate ice cream loaded with chocolate chips."),
    p("FZ-BASKIN-MISSISSIPPI-MUD-500ML", "Baskin Robbins Mississippi Mud Ice Cream", FZ, b("Baskin Robbins"), "500 ml", 32500, 35000, 25, "Chocolate ice cream with fudge ribbons and brownie pieces."),
    p("FZ-VADILAL-MALAI-KULFI-6PC", "Vadilal Malai Kulfi", FZ, b("Vadilal"), "6 pcs", 18000, 20000, 35, "Traditional malai kulfi sticks, rich and creamy."),
    p("FZ-SUMERU-PEAS-1KG", "Sumeru Frozen Green Peas", FZ, b("Sumeru"), "1 kg", 18000, 20000, 40, "Value pack of frozen green peas, sweet and tender."),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{is_valid_slug, MAX_MONEY};
    use std::collections::HashSet;

    #[test]
    fn enough_categories_and_products() {
        assert!(CATEGORIES.len() >= 8);
        assert!(PRODUCTS.len() >= 150, "only {} products", PRODUCTS.len());
        for c in CATEGORIES {
            let n = PRODUCTS.iter().filter(|p| p.category == c.slug).count();
            assert!(n >= 15, "{} has only {n} products", c.slug);
        }
    }

    #[test]
    fn categories_are_sane() {
        let slugs: HashSet<_> = CATEGORIES.iter().map(|c| c.slug).collect();
        assert_eq!(slugs.len(), CATEGORIES.len());
        for c in CATEGORIES {
            assert!(is_valid_slug(c.slug), "{}", c.slug);
            assert_eq!(crate::model::derive_slug(c.name), c.slug);
        }
    }

    #[test]
    fn products_are_sane() {
        let mut skus = HashSet::new();
        for p in PRODUCTS {
            assert!(skus.insert(p.sku), "duplicate sku {}", p.sku);
            assert!((1..=64).contains(&p.sku.len()), "{}", p.sku);
            assert!(
                p.sku
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                p.sku
            );
            assert!(
                !p.name.trim().is_empty() && p.name.chars().count() <= 200,
                "{}",
                p.sku
            );
            assert!(
                !p.unit.is_empty() && p.unit.chars().count() <= 32,
                "{}",
                p.sku
            );
            assert!(
                p.price >= 1 && p.price <= p.mrp && p.mrp <= MAX_MONEY,
                "{}",
                p.sku
            );
            assert!((20..=200).contains(&p.stock), "{}", p.sku);
            assert!(p.description.len() >= 20, "{}", p.sku);
            assert!(CATEGORIES.iter().any(|c| c.slug == p.category), "{}", p.sku);
            assert_eq!(p.name.trim(), p.name, "{}", p.sku);
        }
        let milk = PRODUCTS
            .iter()
            .find(|p| p.sku == "DB-AMUL-TAAZA-500ML")
            .unwrap();
        assert_eq!((milk.price, milk.mrp), (2700, 2800));
    }
}
