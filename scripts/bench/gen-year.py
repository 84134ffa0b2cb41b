"""A year of backups from three real ones (scripts/bench/year.sh).

    gen-year.py TEMPLATES OUT DAYS

TEMPLATES holds three backups `backup local` took, with their manifests:
one .sql, one .sql.zst, one .sql.zst.age. Each is copied (a copy, not a
link: two manifests of one file are refused) under the names and times of
DAYS days of use, its manifest edited as the tool writes it: created_at,
environment, database, file.name, reason, verification, offsite.
Prints how many backups it wrote.
"""
import json, os, shutil, random, sys, datetime as dt
tpl, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
random.seed(7)
EXT = {'plain': '.sql', 'zst': '.sql.zst', 'age': '.sql.zst.age'}
T = {}
for f in os.listdir(tpl):
    for kind, ext in EXT.items():
        if f.endswith(ext):
            T[kind] = f[:-len(ext)]
assert len(T) == 3, f"three templates wanted, found {T}"
DB={'prod':('qbtime_db_prod','9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d','production','remote'),
    'staging':('qbtime_db_staging','5a1e7c2b-3f4d-4e8a-9b6c-0d1e2f3a4b5c','preview','remote'),
    'local':('qbtime_db_local','00000000-0000-4000-8000-000000000000',None,'local')}
now=dt.datetime.now(dt.timezone.utc)
used=set()
def iso(t): return t.strftime('%Y-%m-%dT%H:%M:%S.%f')+'123Z'
def make(env, t, kind, reason=None, outcome='good', offsite=False):
    stamp=t.strftime('%Y%m%d-%H%M'); stem=f'backup-{env}-{stamp}'; n=2
    while stem in used: stem=f'backup-{env}-{stamp}-{n}'; n+=1
    used.add(stem)
    m=json.load(open(f'{tpl}/{T[kind]}.manifest.json'))
    name=stem+EXT[kind]
    shutil.copyfile(f'{tpl}/{T[kind]}{EXT[kind]}', f'{out}/{name}')
    m['created_at']=iso(t); m['environment']=env
    n_,u,w,l=DB[env]; m['database']={'name':n_,'uuid':u,'wrangler_env':w,'location':l}
    m['file']['name']=name; m['reason']=reason
    m.pop('exact_values',None)
    if outcome is None: m['verification']=None
    else:
        m['verification']['verified_at']=iso(t+dt.timedelta(seconds=1)); m['verification']['outcome']=outcome
        if outcome=='bad': m['verification']['failed']=['audit_chain']
    if offsite:
        ym=t.strftime('%Y/%m')
        m['offsite']={'bucket':'qbtime-d1-backups','key':f'{env}/{ym}/{name}','manifest_key':f'{env}/{ym}/{stem}.manifest.json','uploaded_at':iso(t+dt.timedelta(seconds=30))}
    with open(f'{out}/{stem}.manifest.json','w') as f: json.dump(m,f,indent=2)
    os.chmod(f'{out}/{name}',0o600); os.chmod(f'{out}/{stem}.manifest.json',0o600)
days=int(sys.argv[3])
for d in range(1,days+1):
    day=(now-dt.timedelta(days=d)).replace(hour=2,minute=0,second=random.randint(0,59),microsecond=random.randint(0,999999))
    make('prod', day, 'age' if d<180 else 'plain', offsite=d<200, outcome='bad' if d%97==0 else 'good')
    make('staging', day.replace(minute=30), 'zst', outcome=None if d%89==0 else 'good')
for i in range(int(days*100/365)):
    d=random.randint(1,days); t=(now-dt.timedelta(days=d)).replace(hour=14,minute=0,second=5)
    mig=f'{random.randint(5,204):04d}_change.sql'
    make('staging', t, 'zst', reason=f'pre-migration: {mig} (deploy)')
    make('prod', t.replace(minute=10), 'age', reason=f'pre-migration: {mig} (deploy)')
for i in range(int(days*30/365)):
    d=random.randint(1,days); t=(now-dt.timedelta(days=d)).replace(hour=16,minute=random.randint(0,59))
    make('prod', t, 'age', reason='before: backfill invoices')
for i in range(int(days*60/365)):
    d=random.randint(1,days); t=(now-dt.timedelta(days=d,hours=random.randint(0,23)))
    make('local', t, random.choice(['plain','zst']))
print(len(used))
