//! Name, birthplace and contact tables for the demo population: common Italian names and surnames, foreign names by country, cadastral codes and e-mail providers.

/// Common Italian male first names.
pub(crate) const MALE_NAMES: [&str; 60] = [
    "Marco",
    "Andrea",
    "Giuseppe",
    "Francesco",
    "Luca",
    "Alessandro",
    "Giovanni",
    "Roberto",
    "Stefano",
    "Paolo",
    "Antonio",
    "Mario",
    "Matteo",
    "Davide",
    "Simone",
    "Federico",
    "Lorenzo",
    "Riccardo",
    "Fabio",
    "Massimo",
    "Giorgio",
    "Claudio",
    "Daniele",
    "Michele",
    "Alberto",
    "Emanuele",
    "Nicola",
    "Gabriele",
    "Salvatore",
    "Vincenzo",
    "Franco",
    "Sergio",
    "Maurizio",
    "Luigi",
    "Carlo",
    "Pietro",
    "Enrico",
    "Filippo",
    "Tommaso",
    "Leonardo",
    "Mattia",
    "Gianluca",
    "Alessio",
    "Cristian",
    "Diego",
    "Edoardo",
    "Giacomo",
    "Emilio",
    "Bruno",
    "Renato",
    "Angelo",
    "Domenico",
    "Raffaele",
    "Giulio",
    "Nicolò",
    "Samuele",
    "Pierluigi",
    "Gianni",
    "Valerio",
    "Dario",
];

/// Common Italian female first names.
pub(crate) const FEMALE_NAMES: [&str; 60] = [
    "Maria",
    "Anna",
    "Giulia",
    "Francesca",
    "Chiara",
    "Sara",
    "Laura",
    "Valentina",
    "Elena",
    "Alessandra",
    "Silvia",
    "Federica",
    "Martina",
    "Paola",
    "Roberta",
    "Elisa",
    "Giovanna",
    "Cristina",
    "Barbara",
    "Simona",
    "Monica",
    "Daniela",
    "Marta",
    "Alice",
    "Giorgia",
    "Serena",
    "Claudia",
    "Manuela",
    "Angela",
    "Rosa",
    "Lucia",
    "Teresa",
    "Giuseppina",
    "Carla",
    "Franca",
    "Luisa",
    "Patrizia",
    "Antonella",
    "Stefania",
    "Raffaella",
    "Michela",
    "Ilaria",
    "Beatrice",
    "Aurora",
    "Sofia",
    "Emma",
    "Camilla",
    "Noemi",
    "Veronica",
    "Irene",
    "Caterina",
    "Eleonora",
    "Benedetta",
    "Arianna",
    "Gabriella",
    "Lorenza",
    "Marina",
    "Graziella",
    "Nadia",
    "Rita",
];

/// Common Italian surnames, national ones first and then typically Bolognese/Emilian ones.
pub(crate) const SURNAMES: [&str; 152] = [
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Colombo",
    "Ricci",
    "Marino",
    "Greco",
    "Bruno",
    "Gallo",
    "Conti",
    "De Luca",
    "Mancini",
    "Costa",
    "Giordano",
    "Rizzo",
    "Lombardi",
    "Moretti",
    "Barbieri",
    "Fontana",
    "Santoro",
    "Mariani",
    "Rinaldi",
    "Caruso",
    "Ferrara",
    "Galli",
    "Martini",
    "Leone",
    "Longo",
    "Gentile",
    "Martinelli",
    "Vitale",
    "Lombardo",
    "Serra",
    "Coppola",
    "De Santis",
    "D'Angelo",
    "Marchetti",
    "Parisi",
    "Villa",
    "Conte",
    "Ferraro",
    "Ferri",
    "Fabbri",
    "Bianco",
    "Marini",
    "Grasso",
    "Valentini",
    "Messina",
    "Sala",
    "De Angelis",
    "Gatti",
    "Pellegrini",
    "Palumbo",
    "Sanna",
    "Farina",
    "Rizzi",
    "Monti",
    "Cattaneo",
    "Morelli",
    "Amato",
    "Silvestri",
    "Mazza",
    "Testa",
    "Grassi",
    "Pellegrino",
    "Carbone",
    "Giuliani",
    "Benedetti",
    "Barone",
    "Rossetti",
    "Caputo",
    "Montanari",
    "Guerra",
    "Palmieri",
    "Bernardi",
    "Martino",
    "Fiore",
    "De Rosa",
    "Ferretti",
    "Bellini",
    "Basile",
    "Riva",
    "Donati",
    "Piras",
    "Vitali",
    "Battaglia",
    "Sartori",
    "Neri",
    "Costantini",
    "Milani",
    "Pagano",
    "Ruggiero",
    "Sorrentino",
    "D'Amico",
    "Orlando",
    "Negri",
    "Mattei",
    "Bassi",
    "Zanetti",
    "Tosi",
    "Guidi",
    "Bertoni",
    "Zanardi",
    "Malaguti",
    "Govoni",
    "Bonfiglioli",
    "Cavazza",
    "Guidetti",
    "Borghi",
    "Gualandi",
    "Zucchini",
    "Nanni",
    "Venturi",
    "Zanotti",
    "Mazzoni",
    "Cuppini",
    "Stanzani",
    "Tinti",
    "Lambertini",
    "Righi",
    "Cavalieri",
    "Monari",
    "Bonetti",
    "Casadei",
    "Magnani",
    "Bertocchi",
    "Masina",
    "Fantini",
    "Lenzi",
    "Poggi",
    "Rubini",
    "Grandi",
    "Pedrini",
    "Baldini",
    "Collina",
    "Sabattini",
    "Golinelli",
    "Bergonzoni",
    "Bonora",
    "Roversi",
    "Minarini",
    "Dall'Olio",
    "Degli Esposti",
    "Tarozzi",
    "Scagliarini",
    "Zambelli",
    "Vignoli",
    "Gamberini",
    "Bolognesi",
];

/// An Italian comune of birth: cadastral code and relative weight among non-Bolognese births.
pub(crate) struct Comune {
    pub(crate) code: &'static str,
    pub(crate) weight: u32,
}

/// Bologna's cadastral code, also the residence of every demo citizen.
pub(crate) const BOLOGNA: &str = "A944";

/// Other comuni of birth, weighted towards the region and the big cities.
pub(crate) const OTHER_COMUNI: [Comune; 38] = [
    Comune {
        code: "H501",
        weight: 40,
    }, // Roma
    Comune {
        code: "F205",
        weight: 25,
    }, // Milano
    Comune {
        code: "F839",
        weight: 35,
    }, // Napoli
    Comune {
        code: "L219",
        weight: 15,
    }, // Torino
    Comune {
        code: "G273",
        weight: 30,
    }, // Palermo
    Comune {
        code: "D612",
        weight: 20,
    }, // Firenze
    Comune {
        code: "A662",
        weight: 25,
    }, // Bari
    Comune {
        code: "F257",
        weight: 30,
    }, // Modena
    Comune {
        code: "D548",
        weight: 30,
    }, // Ferrara
    Comune {
        code: "H224",
        weight: 20,
    }, // Reggio Calabria
    Comune {
        code: "E289",
        weight: 30,
    }, // Imola
    Comune {
        code: "H223",
        weight: 20,
    }, // Reggio Emilia
    Comune {
        code: "G337",
        weight: 15,
    }, // Parma
    Comune {
        code: "H199",
        weight: 20,
    }, // Ravenna
    Comune {
        code: "H294",
        weight: 15,
    }, // Rimini
    Comune {
        code: "D704",
        weight: 15,
    }, // Forlì
    Comune {
        code: "G535",
        weight: 8,
    }, // Piacenza
    Comune {
        code: "C573",
        weight: 10,
    }, // Cesena
    Comune {
        code: "B880",
        weight: 20,
    }, // Casalecchio di Reno
    Comune {
        code: "H945",
        weight: 15,
    }, // San Lazzaro di Savena
    Comune {
        code: "G224",
        weight: 10,
    }, // Padova
    Comune {
        code: "L736",
        weight: 8,
    }, // Venezia
    Comune {
        code: "L781",
        weight: 8,
    }, // Verona
    Comune {
        code: "D969",
        weight: 10,
    }, // Genova
    Comune {
        code: "C351",
        weight: 20,
    }, // Catania
    Comune {
        code: "D643",
        weight: 15,
    }, // Foggia
    Comune {
        code: "E506",
        weight: 18,
    }, // Lecce
    Comune {
        code: "D086",
        weight: 15,
    }, // Cosenza
    Comune {
        code: "H703",
        weight: 15,
    }, // Salerno
    Comune {
        code: "L049",
        weight: 12,
    }, // Taranto
    Comune {
        code: "G942",
        weight: 10,
    }, // Potenza
    Comune {
        code: "F158",
        weight: 12,
    }, // Messina
    Comune {
        code: "G482",
        weight: 8,
    }, // Pescara
    Comune {
        code: "G478",
        weight: 8,
    }, // Perugia
    Comune {
        code: "A271",
        weight: 10,
    }, // Ancona
    Comune {
        code: "B354",
        weight: 10,
    }, // Cagliari
    Comune {
        code: "L424",
        weight: 5,
    }, // Trieste
    Comune {
        code: "A562",
        weight: 3,
    }, // San Giuliano Terme
];

/// A foreign country of birth: its `Z` code and names its emigrants commonly carry.
pub(crate) struct Country {
    pub(crate) code: &'static str,
    pub(crate) weight: u32,
    pub(crate) male: &'static [&'static str],
    pub(crate) female: &'static [&'static str],
    pub(crate) surnames: &'static [&'static str],
}

/// Countries of birth of foreign-born residents, weighted as in Bologna's registry.
pub(crate) const COUNTRIES: [Country; 9] = [
    Country {
        code: "Z129", // Romania
        weight: 24,
        male: &["Andrei", "Ion", "Mihai", "Alexandru", "Florin", "Gabriel"],
        female: &[
            "Ioana", "Elena", "Andreea", "Mihaela", "Daniela", "Cristina",
        ],
        surnames: &[
            "Popescu",
            "Ionescu",
            "Popa",
            "Dumitru",
            "Stan",
            "Constantin",
            "Munteanu",
        ],
    },
    Country {
        code: "Z100", // Albania
        weight: 12,
        male: &["Arben", "Ilir", "Gentian", "Erion", "Besnik", "Klodian"],
        female: &["Elira", "Blerina", "Anisa", "Klea", "Ermira", "Valbona"],
        surnames: &[
            "Hoxha", "Shehu", "Kola", "Gjoka", "Leka", "Berisha", "Dervishi",
        ],
    },
    Country {
        code: "Z330", // Morocco
        weight: 12,
        male: &["Mohamed", "Youssef", "Ahmed", "Rachid", "Hamza", "Karim"],
        female: &["Fatima", "Khadija", "Samira", "Nadia", "Salma", "Imane"],
        surnames: &[
            "El Amrani",
            "Benali",
            "Bouzid",
            "El Idrissi",
            "Alaoui",
            "Tahiri",
        ],
    },
    Country {
        code: "Z210", // China
        weight: 9,
        male: &["Wei", "Jian", "Hao", "Lei", "Jun", "Ming"],
        female: &["Li", "Mei", "Xiaoling", "Yan", "Jing", "Hui"],
        surnames: &["Zhang", "Wang", "Chen", "Liu", "Hu", "Zhou", "Lin"],
    },
    Country {
        code: "Z216", // Philippines
        weight: 10,
        male: &["Jose", "Mark", "John", "Ramon", "Rodel", "Jerome"],
        female: &["Maria", "Rosalie", "Jennifer", "Marites", "Lorna", "Divina"],
        surnames: &[
            "Santos",
            "Reyes",
            "Cruz",
            "Bautista",
            "Garcia",
            "Mendoza",
            "Villanueva",
        ],
    },
    Country {
        code: "Z138", // Ukraine
        weight: 12,
        male: &["Oleksandr", "Andriy", "Serhiy", "Dmytro", "Yuriy", "Taras"],
        female: &["Olena", "Oksana", "Natalia", "Iryna", "Halyna", "Tetiana"],
        surnames: &[
            "Shevchenko",
            "Kovalenko",
            "Bondarenko",
            "Tkachenko",
            "Kravchenko",
            "Melnyk",
        ],
    },
    Country {
        code: "Z140", // Moldova
        weight: 9,
        male: &["Ion", "Vasile", "Sergiu", "Victor", "Nicolae", "Igor"],
        female: &["Ana", "Natalia", "Svetlana", "Tatiana", "Olga", "Lilia"],
        surnames: &["Rusu", "Ciobanu", "Munteanu", "Ceban", "Lupu", "Cojocaru"],
    },
    Country {
        code: "Z236", // Pakistan
        weight: 6,
        male: &["Muhammad", "Ali", "Imran", "Bilal", "Usman", "Asif"],
        female: &["Ayesha", "Sana", "Fatima", "Amina", "Rabia", "Nadia"],
        surnames: &["Khan", "Ahmed", "Hussain", "Iqbal", "Malik", "Butt"],
    },
    Country {
        code: "Z249", // Bangladesh
        weight: 6,
        male: &["Mohammad", "Rahim", "Karim", "Shahid", "Jamal", "Rafiq"],
        female: &["Nasrin", "Farzana", "Shirin", "Taslima", "Rina", "Sumaiya"],
        surnames: &["Rahman", "Hossain", "Islam", "Akter", "Uddin", "Miah"],
    },
];

/// Bologna's postal codes.
pub(crate) const CAP_RANGE: (u32, u32) = (40121, 40141);

/// E-mail providers with weights for younger and older residents.
pub(crate) const EMAIL_PROVIDERS: [(&str, u32, u32); 7] = [
    ("gmail.com", 40, 14),
    ("libero.it", 14, 28),
    ("hotmail.it", 12, 6),
    ("outlook.it", 10, 4),
    ("yahoo.it", 6, 8),
    ("alice.it", 3, 18),
    ("virgilio.it", 3, 14),
];

/// Certified-mail (PEC) domains, used by a few residents as their only address.
pub(crate) const PEC_PROVIDERS: [&str; 3] = ["pec.it", "legalmail.it", "postacert.it"];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn name_tables_have_no_duplicates() {
        for list in [&MALE_NAMES[..], &FEMALE_NAMES[..], &SURNAMES[..]] {
            let set: HashSet<_> = list.iter().collect();
            assert_eq!(set.len(), list.len());
        }
        let codes: HashSet<_> = OTHER_COMUNI.iter().map(|c| c.code).collect();
        assert_eq!(codes.len(), OTHER_COMUNI.len());
        assert!(!codes.contains(BOLOGNA));
    }

    #[test]
    fn foreign_tables_are_non_empty_and_z_coded() {
        for c in &COUNTRIES {
            assert!(c.code.starts_with('Z') && c.code.len() == 4);
            assert!(!c.male.is_empty() && !c.female.is_empty() && !c.surnames.is_empty());
        }
    }
}
