#!/usr/bin/env node
'use strict';
require('../dist/app/main.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), 200).unref();
  });
