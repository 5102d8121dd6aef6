//! Given-name variants: a curated table of groups of first names that name the same person (William, Bill,
//! Will, Liam; Margaret, Peggy, Maggie; Siobhan, Shivaun; Mohammed, Muhammad, Mohamed; Dafydd, David, Dai …).
//!
//! The table covers common English, Irish, Scottish and Welsh forms and diminutives, South-Asian, Arabic,
//! Somali and Turkish transliterations, Polish forms, Hebrew/Yiddish forms used in the Orthodox Jewish
//! community and West African short forms — the communities of a London borough. Each group's first entry is
//! its canonical form. A name may belong to several groups (`Chris` is Christopher or Christine; `Alex` is
//! Alexander or Alexandra): [`canonical`] then answers the first group's canonical form, and [`are_variants`]
//! answers true for a member of any of its groups.
//!
//! Entries are folded ASCII ([`super::normalise::fold`]), so `Siân`, `Seán` and `Łukasz` are found as `sian`,
//! `sean` and `lukasz`. Names that merely sound alike (Hassan / Hussein) are deliberately *not* grouped: they are
//! different names, and the phonetic comparison already relates them.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::normalise;

/// The variant groups; each group's first name is its canonical form.
pub const GROUPS: &[&[&str]] = &[
    // English (and the Irish, Scottish, Welsh and Polish forms of the same names).
    &["william", "bill", "billy", "will", "willie", "willy", "liam", "wil", "wilhelm", "wiliam", "gwilym"],
    &["robert", "bob", "bobby", "bobbie", "rob", "robbie", "robby", "bert", "rab", "rabbie", "robin"],
    &["richard", "dick", "dickie", "rich", "richie", "rick", "ricky", "rickie", "rik", "ryszard"],
    &[
        "margaret",
        "peggy",
        "maggie",
        "meg",
        "megan",
        "madge",
        "marge",
        "margie",
        "mags",
        "maisie",
        "greta",
        "rita",
        "mairead",
        "maighread",
        "malgorzata",
        "gosia",
        "malgosia",
        "margarita",
        "marguerite",
        "margo",
        "margot",
    ],
    &[
        "elizabeth",
        "elisabeth",
        "eliza",
        "liz",
        "lizzie",
        "lizzy",
        "liza",
        "beth",
        "betty",
        "bette",
        "bess",
        "bessie",
        "betsy",
        "libby",
        "elspeth",
        "elzbieta",
        "ela",
        "lisbeth",
    ],
    &["john", "jon", "johnny", "johnnie", "jonny", "jack", "jock", "johan", "johannes", "jonty"],
    &["jonathan", "jon", "jonny", "jonty", "johnathan", "jonathon"],
    &["james", "jim", "jimmy", "jimmie", "jamie", "jas", "seamus", "shamus", "hamish", "jaime", "jakes"],
    &["thomas", "tom", "tommy", "tommie", "thom", "tam", "tomos", "tomasz", "tomek", "tomas"],
    &["michael", "mike", "mick", "mickey", "micky", "mikey", "mich", "michal", "micheal", "mihail", "mikhail"],
    &["david", "dave", "davey", "davy", "dai", "dafydd", "dewi", "dovid", "dawid", "dawud", "daud", "dawood"],
    &["daniel", "dan", "danny", "dani", "daniyal", "danyal"],
    &["joseph", "joe", "joey", "jos", "josef", "jozef", "yosef", "yossi", "giuseppe"],
    &["christopher", "chris", "kit", "christy", "topher", "krzysztof", "krzys", "kristopher"],
    &[
        "christine",
        "chris",
        "chrissie",
        "chrissy",
        "christina",
        "kirsty",
        "kirstie",
        "kirsten",
        "tina",
        "krystyna",
        "kristina",
        "kristine",
    ],
    &[
        "alexander",
        "alex",
        "alec",
        "alick",
        "sandy",
        "sasha",
        "xander",
        "alasdair",
        "alistair",
        "alastair",
        "alister",
        "aleksander",
        "alexandre",
        "oleksandr",
        "aleksandr",
    ],
    &["alexandra", "alex", "alexa", "sandra", "sasha", "lexi", "lexie", "sandy", "aleksandra", "ola", "sacha"],
    &["andrew", "andy", "drew", "andrzej", "andreas", "andre", "aindrea"],
    &["anthony", "tony", "antony", "anton", "antoni", "antonio", "anthoney"],
    &["edward", "ed", "eddie", "eddy", "ted", "teddy", "ned", "edvard", "edek"],
    &["henry", "harry", "hal", "hank", "henryk", "enrique", "henri", "hendrik"],
    &["charles", "charlie", "chas", "chaz", "chuck", "karol", "carlos", "charley"],
    &["frederick", "fred", "freddie", "freddy", "fryderyk", "frederic", "fredrick"],
    &["george", "georgie", "geordie", "jerzy", "jorge", "georgios", "yiorgos"],
    &["samuel", "sam", "sammy", "sammie", "shmuel", "samuil"],
    &["samantha", "sam", "sammy", "sammie", "sammi"],
    &["benjamin", "ben", "benji", "benjy", "benny", "binyamin", "benyamin"],
    &["nicholas", "nick", "nicky", "nicolas", "nikolas", "nico", "mikolaj", "nikolai"],
    &["matthew", "matt", "matty", "mathew", "mateusz", "mattias", "matthias", "mattie"],
    &["patrick", "pat", "paddy", "patsy", "padraig", "padraic", "patryk", "patrik"],
    &["peter", "pete", "piotr", "piotrek", "peadar", "pedro", "pierre", "petr"],
    &["stephen", "steve", "steven", "stevie", "stefan", "stephan", "steffan", "szczepan", "stevan"],
    &["philip", "phil", "phillip", "pip", "filip", "phillipe"],
    &["timothy", "tim", "timmy", "tymoteusz"],
    &["lawrence", "larry", "laurence", "laurie", "lorenzo", "laurentiu"],
    &["raymond", "ray", "raymund", "rajmund"],
    &["ronald", "ron", "ronnie", "ronny"],
    &["donald", "don", "donnie", "donny"],
    &["kenneth", "ken", "kenny", "kennie", "coinneach"],
    &["gerald", "gerry", "jerry", "gerard", "ger"],
    &["terence", "terry", "terrence", "tel"],
    &["leonard", "len", "lenny", "leo", "lennie"],
    &["gregory", "greg", "gregor", "grzegorz", "grigor"],
    &["jacob", "jake", "jakub", "kuba", "yaakov", "yakov", "yaacov", "yankel", "jakob", "yaqub", "yakub"],
    &["abraham", "abe", "avraham", "avrohom", "avrum", "abram"],
    &["moses", "moshe", "moishe", "mozes", "musa", "moussa", "mousa"],
    &["isaac", "ike", "yitzchak", "yitzhak", "itzik", "izaak", "ishaq", "izak"],
    &["solomon", "sol", "shlomo", "salomon", "zalman"],
    &["aaron", "aron", "aharon", "harun", "haroon", "haroun"],
    &["chaim", "haim", "hyman", "hymie", "hayim"],
    &["judah", "yehuda", "yehudah", "yidel", "yehudi"],
    &["menachem", "mendel", "mendy", "menahem"],
    &[
        "mary", "maria", "marie", "mae", "molly", "polly", "mamie", "maire", "mair", "mairi", "mhairi", "marysia",
        "maura",
    ],
    &["ann", "anne", "anna", "annie", "nan", "nancy", "ana", "anya", "ania", "anka", "hanna", "anouska"],
    &[
        "catherine",
        "kate",
        "katie",
        "kathy",
        "cathy",
        "kath",
        "cath",
        "katherine",
        "kathryn",
        "katharine",
        "caitlin",
        "kathleen",
        "kat",
        "kitty",
        "katarzyna",
        "kasia",
        "cait",
        "caitriona",
        "catriona",
        "katrina",
        "catrina",
        "catrin",
        "katy",
        "katey",
        "cathleen",
        "kathrine",
        "caterina",
        "katarina",
    ],
    &["patricia", "pat", "patty", "pattie", "patsy", "trish", "tricia", "trisha", "patrycja"],
    &["susan", "sue", "susie", "suzy", "suzie", "suzanne", "susanna", "susannah", "shoshana", "shoshanna", "zuzanna"],
    &["deborah", "debbie", "debby", "debs", "debra", "devorah", "dvora", "dvorah"],
    &["rebecca", "becky", "becca", "bekki", "rivka", "rivkah", "rebeca", "rebekah"],
    &["sarah", "sara", "sally", "sadie", "suri", "sarai", "sorcha", "sura"],
    &["rachel", "rachael", "rae", "rochel", "ruchel", "rahel"],
    &["jennifer", "jen", "jenny", "jenna", "jennie", "jenifer"],
    &["victoria", "vicky", "vicki", "vickie", "tori", "wiktoria", "viktoria"],
    &["jessica", "jess", "jessie", "jessy"],
    &["dorothy", "dot", "dottie", "dolly", "dora", "dorota"],
    &["helen", "helena", "ellen", "nell", "nellie", "elena", "halina", "eilidh", "helene"],
    &["eleanor", "ellie", "nora", "elinor", "eleanora", "leonora", "nell", "elnora", "eleonora"],
    &["frances", "fran", "fanny", "francesca", "franny", "franciszka"],
    &["francis", "frank", "frankie", "fran", "proinsias", "franciszek", "francisco", "francois"],
    &["teresa", "theresa", "tess", "tessa", "terri", "terry", "tessie", "tereza"],
    &["josephine", "jo", "josie", "jojo", "josefina", "jozefina"],
    &["joanne", "jo", "joanna", "joan", "joann", "johanna", "joanie", "asia"],
    &["jane", "jayne", "janey", "janie", "jan", "janet", "janette", "jean", "jeanie", "jeannie", "seonaid"],
    &["siobhan", "shivaun", "shivonne", "chevonne", "shevaun", "siobhain", "shevonne", "shivon"],
    &["sinead", "shinead", "shenade"],
    &["sean", "shaun", "shawn", "shon", "seann", "shane", "sion", "eoin"],
    &["niamh", "neve", "neave", "nieve", "neeve"],
    &["aoife", "eefa", "eva"],
    &["caoimhe", "keeva", "keva", "kweeva"],
    &["owen", "owain", "ewan", "euan", "ewen", "eoghan"],
    &["ian", "iain", "ean", "iaen"],
    &["evan", "ieuan", "ifan", "iwan"],
    &["hugh", "huw", "hughie", "hugo", "aodh"],
    &["rhys", "rees", "reece", "reese", "rice"],
    &["sian", "shan", "shaan", "siani"],
    &["llewellyn", "llew", "llywelyn", "lewelyn", "llewelyn"],
    &["gwendolyn", "gwen", "gwendolen", "wendy"],
    &["bronwen", "bronwyn", "bron"],
    &["cerys", "ceris", "ceri"],
    &["rory", "ruairi", "ruaidhri", "ruaridh", "roderick", "rod", "roddy", "rodrick"],
    &["kieran", "ciaran", "kieron", "keiran", "kieren", "ciaron"],
    &["connor", "conor", "conner", "conchobhar"],
    &["dermot", "diarmuid", "diarmaid", "dermott", "diarmid"],
    &["fergus", "fergie", "fearghas", "feargus"],
    &["bridget", "bridie", "brigid", "breda", "brid", "bridgette", "brigitte", "bride"],
    &["eileen", "aileen", "eibhlin", "eveleen", "ailene"],
    &["grainne", "grania", "granya"],
    &["orla", "orlaith", "orlagh", "orlah"],
    &["roisin", "rosheen", "rosaleen"],
    &["colm", "colum", "columba"],
    &["tadhg", "teague", "tighe", "teigue"],
    &["oisin", "osheen", "ossian"],
    &["callum", "calum", "kallum"],
    &["angus", "aonghas", "gus", "aonghus"],
    &["lachlan", "lachie", "lachann", "lachlann"],
    &["isla", "islay"],
    &["luke", "lucas", "lukas", "lukasz", "luka"],
    &["paul", "pawel", "paulie", "pablo", "pol", "paolo"],
    &["paula", "pauline", "paulina", "pola"],
    &["mark", "marc", "marek", "marko", "marcus", "markus"],
    &["martin", "marty", "marcin", "martyn", "mairtin"],
    &["agnes", "agnieszka", "aga", "nessa", "nessie", "ines"],
    &["magdalena", "magda", "madeleine", "madeline", "maddie", "madelyn", "magdalene"],
    &["sophie", "sophia", "sofia", "zofia", "sophy", "zosia", "sofie"],
    &["eve", "eva", "ewa", "evie", "ewka"],
    &["evelyn", "evie", "eveline", "evelina", "ewelina"],
    &["wojciech", "wojtek", "voytek"],
    &["nathaniel", "nat", "nate", "nathan", "nathanael"],
    &["joshua", "josh", "yehoshua"],
    &["zachary", "zach", "zack", "zak", "zac", "zachariah"],
    &["oliver", "ollie", "olly", "olivier"],
    &["olivia", "liv", "livvy", "livia", "oliwia"],
    &["emily", "em", "emmy", "millie", "emilie", "emilia", "emmie"],
    &["emma", "em", "emmy", "emmie"],
    &["amelia", "millie", "mila", "amalia"],
    &["charlotte", "lottie", "charlie", "lotte", "carlotta"],
    &["abigail", "abi", "abby", "abbie", "gail", "abbey"],
    &["isabel", "isabella", "izzy", "bella", "isobel", "ishbel", "ysabel", "izabela", "isabelle"],
    &["louise", "lou", "louisa", "lulu", "luiza"],
    &["louis", "lou", "lewis", "luis", "louie", "ludwik", "luigi"],
    &["gabriel", "gabe", "gabriele", "gabryel"],
    &["gabrielle", "gabby", "gabi", "gabriela", "gabriella"],
    &["jacqueline", "jackie", "jacqui", "jacky", "jaclyn"],
    &["kimberley", "kim", "kimberly", "kimmy"],
    &["pamela", "pam", "pammy"],
    &["barbara", "barb", "babs", "barbie", "basia"],
    &["valerie", "val", "valeria"],
    &["gillian", "gill", "jill", "gillie", "jillian", "gilly"],
    &["geoffrey", "geoff", "jeff", "jeffrey", "jeffery"],
    &["albert", "al", "bert", "bertie", "albie"],
    &["alfred", "alf", "alfie", "fred", "freddie"],
    &["arthur", "art", "artie", "artur"],
    &["archibald", "archie", "archy"],
    &["bernard", "bernie", "barney", "bernhard"],
    &["douglas", "doug", "dougie", "duggie"],
    &["jeremy", "jerry", "jez", "jem"],
    &["maurice", "mo", "morris", "moritz"],
    &["reginald", "reg", "reggie"],
    &["stanley", "stan", "stanislaw", "stas"],
    &["stuart", "stewart", "stu", "stew"],
    &["vincent", "vince", "vinny", "vinnie", "wincenty"],
    &["walter", "walt", "wally", "walther"],
    &["alice", "ally", "allie", "alicia", "alys", "alicja"],
    &["caroline", "carol", "carrie", "carolyn", "caz", "karolina", "carolina"],
    &["diana", "di", "diane", "dianne", "dina"],
    &["florence", "flo", "florrie", "flossie"],
    &["georgina", "georgie", "gina", "georgia"],
    &["harriet", "hattie", "hatty"],
    &["julia", "julie", "jules", "juliet", "julianna", "julka", "giulia"],
    &["lucy", "lucia", "lucille", "lucinda", "luci", "lucie", "lucja"],
    &["natalie", "nat", "natalia", "natasha", "tasha", "natalya"],
    &["penelope", "penny", "pen"],
    &["rose", "rosie", "rosa", "rozalia"],
    &["theodore", "theo", "ted", "teddy", "teodor", "fedor"],
    &["tobias", "toby", "tobi", "tobiasz"],
    &["maximilian", "max", "maks", "maksymilian", "maxim"],
    &["dominic", "dom", "dominik", "dominick"],
    &["sebastian", "seb", "bastian", "sebastien"],
    &["stephanie", "steph", "stephie", "stefanie", "stefania"],
    &["zoe", "zoey", "zoie", "zoya"],
    &["chloe", "khloe", "cloe"],
    &["melissa", "mel", "missy", "mellie"],
    &["melanie", "mel", "mellie", "melania"],
    &["veronica", "ronnie", "veronika", "weronika"],
    &["hannah", "hanna", "hana", "chana", "chanah", "chani", "channah", "hanah"],
    &["esther", "ester", "estie", "essie", "esti", "estera"],
    &["leah", "lea", "leia", "lia"],
    &["chaya", "chaja", "haya", "chaye"],
    &["miriam", "maryam", "mariam", "meryem", "miri", "myriam", "mariyam"],
    // Arabic, South-Asian, Somali and Turkish transliterations.
    &[
        "mohammed", "muhammad", "mohamed", "mohammad", "muhammed", "mohamad", "mohd", "md", "mohamud", "mahomed",
        "mehmet", "muhamed", "mohammod", "muhammet", "mohammud", "mohummed", "mo", "muhamad", "mahammad", "mehmed",
    ],
    &["ahmed", "ahmad", "ahmet", "ahmedd", "ahamed", "achmed"],
    &["mustafa", "mustapha", "mostafa", "moustafa", "mustafaa"],
    &["hussain", "hussein", "husain", "hussien", "husein", "huseyin", "hosein", "hossain"],
    &["hassan", "hasan", "hassen", "hasaan"],
    &["abdul", "abdel", "abdool", "abdoul", "abdal"],
    &["abdullah", "abdallah", "abdulla", "abdalla", "abdillahi", "abdulahi", "abdullahi"],
    &["abdirahman", "abdurrahman", "abdulrahman", "abdurahman", "abdelrahman", "abdulrehman"],
    &["fatima", "fatma", "fatimah", "fathima", "fatuma", "faduma", "fatoumata", "fatme"],
    &["aisha", "ayesha", "aysha", "ayisha", "ayse", "aishah", "aicha", "ayshe"],
    &["khadija", "khadijah", "khadeeja", "hatice", "khadijo", "hadiza"],
    &["zainab", "zaynab", "zeynep", "zainabu", "zenab"],
    &["yusuf", "yousuf", "yousef", "youssef", "yusef", "yousif", "yusif"],
    &["ibrahim", "ebrahim", "ibraheem", "ibrahima", "ebrima", "brahim"],
    &["ismail", "ismael", "esmail", "ishmael", "ismaeel"],
    &["suleiman", "sulaiman", "sulayman", "suleyman", "sulaimaan", "suleman"],
    &["osman", "usman", "uthman", "othman", "usmaan"],
    &["omar", "umar", "omer"],
    &["rashid", "rasheed", "rachid", "rashed"],
    &["hamid", "hameed", "hamed"],
    &["jamal", "jamaal", "gamal", "cemal", "jamel"],
    &["kamal", "kemal", "kamaal", "kamel"],
    &["khalid", "khaled", "halid"],
    &["karim", "kareem", "kerim"],
    &["rahim", "raheem", "rahime"],
    &["hafiz", "hafeez", "hafez"],
    &["nasir", "nasser", "naseer", "nassir"],
    &["saeed", "said", "saiid", "sayeed", "saied", "saeid"],
    &["shahid", "shaheed", "shahed"],
    &["tariq", "tarik", "tarek", "tareq"],
    &["khalil", "halil", "khaleel"],
    &["murad", "murat", "mourad"],
    &["ramadan", "ramazan", "ramzan", "ramadhan"],
    &["amina", "aminah", "ameena", "emine", "aminata", "amena"],
    &["salma", "selma", "salmaa"],
    &["yasmin", "yasmine", "jasmine", "jasmin", "yasemin", "yasmeen"],
    &["nazma", "nazmah", "nazmin"],
    &["rahima", "raheema", "rahime"],
    &["mohinder", "mohindar", "mahinder", "mahindar"],
    &["harjit", "harjeet"],
    &["gurpreet", "gurprit"],
    &["manjit", "manjeet"],
    &["sukhwinder", "sukhvinder"],
    &["jaswinder", "jasvinder"],
    &["baljit", "baljeet"],
    &["kuldip", "kuldeep"],
    &["mandeep", "mandip"],
    &["sandeep", "sandip"],
    &["pradeep", "pradip"],
    &["dilip", "dileep"],
    &["deepak", "dipak"],
    &["lakshmi", "laxmi", "lakshmee"],
    &["krishna", "krishan", "kishan", "krish"],
    &["shyam", "syam", "sham"],
    &["vijay", "vijai", "vijey"],
    &["rajesh", "raj", "rajeshwar"],
    &["suresh", "sures"],
    &["priya", "pria", "priyah"],
    // West African short forms (Yoruba, Igbo, Akan day names).
    &["oluwaseun", "seun"],
    &["oluwatobi", "tobi", "tobiloba"],
    &["olufemi", "femi"],
    &["oluwakemi", "kemi"],
    &["babatunde", "tunde"],
    &["temitope", "tope", "temi"],
    &["abimbola", "bimbo", "bola"],
    &["folasade", "sade", "shade"],
    &["oluwafunmilayo", "funmilayo", "funmi"],
    &["oluwatoyin", "toyin"],
    &["adebayo", "bayo"],
    &["chukwuemeka", "emeka"],
    &["chiamaka", "amaka"],
    &["kwaku", "kweku"],
    &["kwadwo", "kojo", "kodwo", "kwodwo"],
    &["kwasi", "kwesi", "akwasi", "kwase"],
    &["kwabena", "kobina", "ebo", "kwabina"],
    &["adwoa", "adjoa", "adjua"],
    &["afua", "efua", "afia"],
    &["abena", "abenaa", "araba"],
];

/// Every name → the indices of its groups.
static INDEX: LazyLock<HashMap<&'static str, Vec<usize>>> = LazyLock::new(|| {
    let mut index: HashMap<&'static str, Vec<usize>> = HashMap::new();
    for (i, group) in GROUPS.iter().enumerate() {
        for name in *group {
            let groups = index.entry(name).or_default();
            if !groups.contains(&i) {
                groups.push(i);
            }
        }
    }
    index
});

fn groups_of(name: &str) -> &'static [usize] {
    let found = INDEX.get(name).or_else(|| {
        let folded: String = normalise::fold(name).chars().filter(char::is_ascii_alphabetic).collect();
        INDEX.get(folded.as_str())
    });
    found.map_or(&[], Vec::as_slice)
}

/// The canonical form of a given name (`bill` → `william`, `Shivaun` → `siobhan`), or the name itself when it
/// has no variants in the table. The name is compared folded; an answer from the table is folded lower case.
#[must_use]
pub fn canonical(name: &str) -> &str {
    match groups_of(name).first().and_then(|&g| GROUPS[g].first()) {
        Some(canonical) => canonical,
        None => name,
    }
}

/// True when two given names name the same person: the same folded name, or members of one variant group
/// (`Bill` and `Liam` are both William).
#[must_use]
pub fn are_variants(a: &str, b: &str) -> bool {
    let (fa, fb) = (normalise::name(a).joined, normalise::name(b).joined);
    are_variants_folded(&fa, &fb)
}

/// [`are_variants`] of two names already folded ([`normalise::name`]'s joined form).
pub(super) fn are_variants_folded(a: &str, b: &str) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    let groups = |name: &str| INDEX.get(name).map_or(&[][..], Vec::as_slice);
    let (ga, gb) = (groups(a), groups(b));
    ga.iter().any(|g| gb.contains(g))
}

/// Endings that make a feminine name of a masculine one (Paul → Paula, Louis → Louise, Daniel → Danielle,
/// Joseph → Josephine, Henri → Henriette).
const FEMININE_ENDINGS: &[&str] = &["a", "e", "ah", "ia", "le", "lle", "ne", "ine", "ina", "ette", "elle"];

/// Known masculine/feminine pairs that no ending rule catches.
const GENDERED_PAIRS: &[(&str, &str)] = &[("francis", "frances"), ("jesse", "jessie")];

/// True when two folded first names are the masculine and feminine forms of one name (Paul / Paula, Louis /
/// Louise, Eric / Erica, Daniel / Danielle, Antonio / Antonia, Francis / Frances) — spelled alike, sounding
/// alike, and typical of brother-and-sister twins. Matching never takes such a pair as proof of identity.
#[must_use]
pub fn gendered_pair(a: &str, b: &str) -> bool {
    if a == b {
        return false;
    }
    if GENDERED_PAIRS.iter().any(|&(x, y)| (a, b) == (x, y) || (a, b) == (y, x)) {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.len() >= 3
        && let Some(ending) = long.strip_prefix(short)
        && FEMININE_ENDINGS.contains(&ending)
        // A doubled last letter (Alicee, Sylwiaa) is a typo, not a feminine form.
        && !short.ends_with(ending)
    {
        return true;
    }
    // Antonio / Antonia, Mario / Maria: the same name but the final o/a.
    let (sa, sb) = (a.as_bytes(), b.as_bytes());
    sa.len() == sb.len()
        && sa.len() >= 4
        && sa[..sa.len() - 1] == sb[..sb.len() - 1]
        && matches!((sa[sa.len() - 1], sb[sb.len() - 1]), (b'o', b'a') | (b'a', b'o'))
}

/// The canonical forms of every group a name belongs to (`chris` → `christopher`, `christine`); empty when the
/// name is in no group.
#[must_use]
pub fn canonicals(name: &str) -> Vec<&'static str> {
    groups_of(name).iter().filter_map(|&g| GROUPS[g].first().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_large_and_folded() {
        let names: usize = GROUPS.iter().map(|g| g.len()).sum();
        assert!(names >= 150, "{names} names");
        for group in GROUPS {
            for name in *group {
                assert!(name.bytes().all(|b| b.is_ascii_lowercase()), "{name}");
            }
        }
    }

    #[test]
    fn english_diminutives_are_variants() {
        for (a, b) in [
            ("William", "Bill"),
            ("Bill", "Liam"),
            ("Will", "Billy"),
            ("Margaret", "Peggy"),
            ("Maggie", "Meg"),
            ("Robert", "Bob"),
            ("Rob", "Bobby"),
            ("Elizabeth", "Liz"),
            ("Beth", "Betty"),
            ("Katherine", "Kate"),
        ] {
            assert!(are_variants(a, b), "{a} / {b}");
        }
    }

    #[test]
    fn irish_scottish_welsh_and_south_asian_forms_are_variants() {
        for (a, b) in [
            ("Siobhan", "Shivaun"),
            ("Siobhán", "Chevonne"),
            ("Sean", "Shaun"),
            ("Seán", "Shawn"),
            ("Ian", "Iain"),
            ("Dafydd", "David"),
            ("Dai", "Dave"),
            ("Mohammed", "Muhammad"),
            ("Mohamed", "Mohammad"),
            ("Hamish", "James"),
            ("Łukasz", "Luke"),
            ("Fatima", "Fatma"),
        ] {
            assert!(are_variants(a, b), "{a} / {b}");
        }
    }

    #[test]
    fn different_names_are_not_variants() {
        for (a, b) in [("William", "Robert"), ("Hassan", "Hussein"), ("Mary", "Margaret"), ("John", "Ian"), ("", "")] {
            assert!(!are_variants(a, b), "{a} / {b}");
        }
    }

    #[test]
    fn masculine_and_feminine_forms_are_recognised() {
        for (a, b) in [
            ("paul", "paula"),
            ("louise", "louis"),
            ("eric", "erica"),
            ("daniel", "danielle"),
            ("joseph", "josephine"),
            ("antonio", "antonia"),
            ("francis", "frances"),
            ("amir", "amira"),
        ] {
            assert!(gendered_pair(a, b), "{a} / {b}");
        }
        for (a, b) in
            [("paul", "paul"), ("jo", "joe"), ("john", "jon"), ("mark", "marco"), ("anna", "anne"), ("alice", "alicee")]
        {
            assert!(!gendered_pair(a, b), "{a} / {b}");
        }
    }

    #[test]
    fn canonical_names_the_group_or_echoes_the_name() {
        assert_eq!(canonical("bill"), "william");
        assert_eq!(canonical("Bill"), "william");
        assert_eq!(canonical("Shivaun"), "siobhan");
        assert_eq!(canonical("Muhammad"), "mohammed");
        assert_eq!(canonical("kimakhe"), "kimakhe");
        assert_eq!(canonicals("chris"), ["christopher", "christine"]);
    }
}
