-- Run once by SingleStore's dev image on first start (mounted as /init.sql):
-- the database the orders-s2 pipeline keeps its state in. The worker creates
-- its tables itself.
CREATE DATABASE IF NOT EXISTS eddy;
