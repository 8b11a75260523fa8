-- The demo shop's database: a subset of PrestaShop 8.1's tables and columns (same names as
-- shared/schemas/prestashop/mariadb.sql), in SQLite, so that the `prestashop` SQL preset reads it
-- as it would read a real shop.
CREATE TABLE ps_customer (
  id_customer INTEGER PRIMARY KEY, id_shop INTEGER NOT NULL DEFAULT 1, id_gender INTEGER NOT NULL,
  id_default_group INTEGER NOT NULL DEFAULT 3, id_lang INTEGER, id_risk INTEGER NOT NULL DEFAULT 1,
  company TEXT, firstname TEXT NOT NULL, lastname TEXT NOT NULL, email TEXT NOT NULL, passwd TEXT NOT NULL,
  last_passwd_gen TEXT, birthday TEXT, newsletter INTEGER NOT NULL DEFAULT 0, ip_registration_newsletter TEXT,
  newsletter_date_add TEXT, optin INTEGER NOT NULL DEFAULT 0, secure_key TEXT NOT NULL DEFAULT '-1', note TEXT,
  active INTEGER NOT NULL DEFAULT 1, is_guest INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0,
  date_add TEXT NOT NULL, date_upd TEXT NOT NULL, reset_password_token TEXT, reset_password_validity TEXT
);
CREATE INDEX customer_email ON ps_customer (email);

CREATE TABLE ps_address (
  id_address INTEGER PRIMARY KEY, id_country INTEGER NOT NULL, id_customer INTEGER NOT NULL DEFAULT 0,
  alias TEXT NOT NULL, company TEXT, lastname TEXT NOT NULL, firstname TEXT NOT NULL, address1 TEXT NOT NULL,
  address2 TEXT, postcode TEXT, city TEXT NOT NULL, other TEXT, phone TEXT, phone_mobile TEXT,
  date_add TEXT NOT NULL, date_upd TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 1, deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX address_customer ON ps_address (id_customer);

CREATE TABLE ps_orders (
  id_order INTEGER PRIMARY KEY, reference TEXT, id_carrier INTEGER NOT NULL, id_lang INTEGER NOT NULL,
  id_customer INTEGER NOT NULL, id_cart INTEGER NOT NULL, id_currency INTEGER NOT NULL DEFAULT 1,
  id_address_delivery INTEGER NOT NULL, id_address_invoice INTEGER NOT NULL, current_state INTEGER NOT NULL,
  secure_key TEXT NOT NULL DEFAULT '-1', payment TEXT NOT NULL, module TEXT, gift INTEGER NOT NULL DEFAULT 0,
  gift_message TEXT, total_paid_tax_incl TEXT NOT NULL, total_shipping_tax_incl TEXT NOT NULL,
  invoice_number INTEGER NOT NULL DEFAULT 0, date_add TEXT NOT NULL, date_upd TEXT NOT NULL
);
CREATE INDEX orders_customer ON ps_orders (id_customer);
CREATE INDEX orders_reference ON ps_orders (reference);

CREATE TABLE ps_order_detail (
  id_order_detail INTEGER PRIMARY KEY, id_order INTEGER NOT NULL, product_id INTEGER NOT NULL,
  product_name TEXT NOT NULL, product_quantity INTEGER NOT NULL, total_price_tax_incl TEXT NOT NULL,
  download_hash TEXT
);
CREATE INDEX order_detail_order ON ps_order_detail (id_order);

CREATE TABLE ps_order_history (
  id_order_history INTEGER PRIMARY KEY, id_employee INTEGER NOT NULL DEFAULT 0, id_order INTEGER NOT NULL,
  id_order_state INTEGER NOT NULL, date_add TEXT NOT NULL
);
CREATE INDEX order_history_order ON ps_order_history (id_order);

CREATE TABLE ps_order_carrier (
  id_order_carrier INTEGER PRIMARY KEY, id_order INTEGER NOT NULL, id_carrier INTEGER NOT NULL,
  tracking_number TEXT, date_add TEXT NOT NULL
);

CREATE TABLE ps_order_payment (
  id_order_payment INTEGER PRIMARY KEY, order_reference TEXT, amount TEXT NOT NULL, payment_method TEXT NOT NULL,
  transaction_id TEXT, card_number TEXT, card_brand TEXT, card_expiration TEXT, card_holder TEXT,
  date_add TEXT NOT NULL
);
CREATE INDEX order_payment_reference ON ps_order_payment (order_reference);

CREATE TABLE ps_cart (
  id_cart INTEGER PRIMARY KEY, id_customer INTEGER NOT NULL, id_guest INTEGER NOT NULL,
  secure_key TEXT NOT NULL DEFAULT '-1', gift_message TEXT, date_add TEXT NOT NULL, date_upd TEXT NOT NULL
);
CREATE INDEX cart_customer ON ps_cart (id_customer);

CREATE TABLE ps_cart_product (
  id_cart INTEGER NOT NULL, id_product INTEGER NOT NULL, id_address_delivery INTEGER NOT NULL DEFAULT 0,
  id_product_attribute INTEGER NOT NULL DEFAULT 0, id_customization INTEGER NOT NULL DEFAULT 0,
  quantity INTEGER NOT NULL DEFAULT 0, date_add TEXT NOT NULL,
  PRIMARY KEY (id_cart, id_product, id_product_attribute, id_customization, id_address_delivery)
);

CREATE TABLE ps_customer_thread (
  id_customer_thread INTEGER PRIMARY KEY, id_lang INTEGER NOT NULL, id_contact INTEGER NOT NULL,
  id_customer INTEGER, id_order INTEGER, status TEXT NOT NULL DEFAULT 'open', email TEXT NOT NULL, token TEXT,
  date_add TEXT NOT NULL, date_upd TEXT NOT NULL
);

CREATE TABLE ps_customer_message (
  id_customer_message INTEGER PRIMARY KEY, id_customer_thread INTEGER, id_employee INTEGER, message TEXT NOT NULL,
  ip_address TEXT, user_agent TEXT, date_add TEXT NOT NULL, date_upd TEXT NOT NULL, private INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX customer_message_thread ON ps_customer_message (id_customer_thread);

CREATE TABLE ps_guest (
  id_guest INTEGER PRIMARY KEY, id_operating_system INTEGER, id_web_browser INTEGER, id_customer INTEGER,
  accept_language TEXT
);
CREATE INDEX guest_customer ON ps_guest (id_customer);

CREATE TABLE ps_connections (
  id_connections INTEGER PRIMARY KEY, id_guest INTEGER NOT NULL, id_page INTEGER NOT NULL, ip_address INTEGER,
  date_add TEXT NOT NULL, http_referer TEXT
);
CREATE INDEX connections_guest ON ps_connections (id_guest);

CREATE TABLE ps_mail (
  id_mail INTEGER PRIMARY KEY, recipient TEXT NOT NULL, template TEXT NOT NULL, subject TEXT NOT NULL,
  id_lang INTEGER NOT NULL, date_add TEXT NOT NULL
);
CREATE INDEX mail_recipient ON ps_mail (recipient);

-- The newsletter block module's table: visitors who subscribed without an account.
CREATE TABLE ps_emailsubscription (
  id INTEGER PRIMARY KEY, id_shop INTEGER NOT NULL DEFAULT 1, email TEXT NOT NULL, newsletter_date_add TEXT,
  ip_registration_newsletter TEXT NOT NULL, http_referer TEXT, active INTEGER NOT NULL DEFAULT 0, id_lang INTEGER
);
