/**
 * Agents from a CSV file (`ccedge agents import`): a header row naming columns (name required;
 * displayName, password, passwordHash, queues, skills, role, mustChangePassword), then one agent
 * per line. In a cell, queues are separated by `;` (`sales;support`), skills are `name=level`
 * separated by `;`. Quoted cells ("a, b" and "" for a quote) follow RFC 4180. Every problem is
 * reported with its line number; the caller adds nothing unless there are none.
 */
export interface CsvAgents {
  agents: Array<{ line: number; agent: Record<string, unknown> }>;
  errors: string[];
}

const COLUMNS = new Set(['name', 'displayName', 'password', 'passwordHash', 'queues', 'skills', 'role', 'mustChangePassword']);

/** Rows of cells with the line each row starts on (quoted cells may span lines). */
export function parseCsv(text: string): Array<{ line: number; cells: string[] }> {
  const rows: Array<{ line: number; cells: string[] }> = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let any = false;
  const src = text.replace(/^\uFEFF/, '');
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (quoted) {
      if (c === '"' && src[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line++;
        cell += c;
      }
      continue;
    }
    if (c === '"' && cell === '') {
      quoted = true;
      any = true;
    } else if (c === ',') {
      cells.push(cell);
      cell = '';
      any = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && src[i + 1] === '\n') i++;
      if (any || cell !== '') rows.push({ line: start, cells: [...cells, cell] });
      cells = [];
      cell = '';
      any = false;
      line++;
      start = line;
    } else {
      cell += c;
      any = true;
    }
  }
  if (any || cell !== '') rows.push({ line: start, cells: [...cells, cell] });
  return rows;
}

export function agentsFromCsv(text: string): CsvAgents {
  const rows = parseCsv(text);
  const errors: string[] = [];
  if (rows.length === 0) return { agents: [], errors: ['line 1: empty file (a header row is needed: name,displayName,password,queues,…)'] };
  const header = rows[0].cells.map((h) => h.trim());
  for (const h of header) if (!COLUMNS.has(h)) errors.push(`line ${rows[0].line}: unknown column "${h}" (columns: ${[...COLUMNS].join(', ')})`);
  if (!header.includes('name')) errors.push(`line ${rows[0].line}: the header has no "name" column`);
  if (errors.length) return { agents: [], errors };
  const agents: CsvAgents['agents'] = [];
  for (const row of rows.slice(1)) {
    if (row.cells.length !== header.length) {
      errors.push(`line ${row.line}: ${row.cells.length} cells, the header has ${header.length}`);
      continue;
    }
    const agent: Record<string, unknown> = {};
    header.forEach((h, i) => {
      const v = row.cells[i].trim();
      if (v === '') return;
      if (h === 'queues') agent.queues = v.split(';').map((q) => q.trim()).filter(Boolean);
      else if (h === 'skills') {
        const skills: Record<string, number> = {};
        for (const part of v.split(';').map((s) => s.trim()).filter(Boolean)) {
          const m = /^([^=]+)=(\d{1,3})$/.exec(part);
          if (!m) errors.push(`line ${row.line}: skills: "${part}" is not name=level`);
          else skills[m[1].trim()] = Number(m[2]);
        }
        agent.skills = skills;
      } else if (h === 'mustChangePassword') {
        if (!/^(true|false|yes|no|1|0)$/i.test(v)) errors.push(`line ${row.line}: mustChangePassword must be true or false`);
        agent.mustChangePassword = /^(true|yes|1)$/i.test(v);
      } else agent[h] = v;
    });
    agents.push({ line: row.line, agent });
  }
  return { agents, errors };
}
